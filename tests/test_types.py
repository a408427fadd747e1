"""Typed values with shapes (design.md section 10.2): types with shape rules and dtypes, reducing and
broadcasting ops, overloads, constants of several types, variadic ops, space validity rules and ops
with context, checked in validation, mutation, JSON and the compiled interpreter (against NumPy)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evolve import mutation
from evolve.errors import MutationError, ProgramError
from evolve.interpreter import Interpreter
from evolve.ops import Input, Op, ValueType, Vocabulary, elementwise_ops, masked_sum
from evolve.program import Node, Program

# ---------------------------------------------------------------------------- a small RL-loss space
# Per-sample values have the element shape [batch]; a Q-value list adds an "actions" axis, a state an
# "obs" axis. A parameter input is an index into the network weights passed as context.
FLOAT = ValueType("float")
LIST = ValueType("list", ("actions",))
STATE = ValueType("state", ("obs",))
ACTION = ValueType("action", dtype="int32")
PARAM = ValueType("param", dtype="int32")


def q_values(context, param, state):
    """Q(state, .) with the weights `param` selects: [batch, obs] x [batch, obs, actions]."""
    return jnp.einsum("bo,boa->ba", state, context["weights"][param])


def select(q, action):
    return jnp.take_along_axis(q, action[..., None], axis=-1)[..., 0]


RL = Vocabulary(
    inputs=(
        Input("q_param", PARAM), Input("action", ACTION), Input("s_tm1", STATE), Input("reward", FLOAT), Input("q_targ_param", PARAM)
    ),
    output_types=(FLOAT, LIST),
    ops=(
        Op("qvalues", (PARAM, STATE), LIST, q_values, uses_context=True),
        Op("select", (LIST, ACTION), FLOAT, select),
        Op("max_list", (LIST,), FLOAT, lambda q: q.max(axis=-1)),  # reduces the "actions" axis
        Op("mean_batch", (FLOAT,), FLOAT, lambda x: x.mean()),  # one number, broadcast back to [batch]
        Op("add", (FLOAT, FLOAT), FLOAT, jnp.add),
        Op("add", (LIST, LIST), LIST, jnp.add),
        Op("add", (FLOAT, LIST), LIST, lambda s, q: s[..., None] + q),  # broadcasts a scalar over actions
        Op("add", (LIST, FLOAT), LIST, lambda q, s: q + s[..., None]),
        Op("sub", (FLOAT, FLOAT), FLOAT, jnp.subtract),
        Op("square", (FLOAT,), FLOAT, jnp.square),
    ),
    max_nodes=20,
    const_types=(FLOAT, LIST),
)

NUMPY_RL = {  # (op, signature) -> the same computation in NumPy, for checking the interpreter
    ("qvalues", "(param, state)"): lambda ctx, p, s: np.einsum("bo,boa->ba", s, ctx["weights"][p]),
    ("select", "(list, action)"): lambda q, a: np.take_along_axis(q, a[:, None], axis=-1)[:, 0],
    ("max_list", "(list)"): lambda q: q.max(axis=-1),
    ("mean_batch", "(float)"): lambda x: np.full_like(x, x.mean()),
    ("add", "(float, float)"): np.add,
    ("add", "(list, list)"): np.add,
    ("add", "(float, list)"): lambda s, q: s[:, None] + q,
    ("add", "(list, float)"): lambda q, s: q + s[:, None],
    ("sub", "(float, float)"): np.subtract,
    ("square", "(float)"): np.square,
}
BATCH, OBS, ACTIONS = 4, 3, 2


def rl_inputs(rng):
    """q_param = 0 and q_targ_param = 1 as scalars (broadcast to the batch), the rest per sample."""
    return [
        np.int32(0),
        rng.integers(0, ACTIONS, BATCH).astype(np.int32),
        rng.normal(size=(BATCH, OBS)).astype(np.float32),
        rng.normal(size=BATCH).astype(np.float32),
        np.int32(1),
    ]


def numpy_run(program, vocab, table, inputs, dims, context=None):
    """A program evaluated node by node in NumPy (float64), every value at its type's full shape."""
    element = (BATCH,)
    types, ops = program.node_types_and_ops(vocab)
    values = []
    for i, (node, op) in enumerate(zip(program.nodes, ops)):
        shape = element + vocab.types[types[i]].resolve(dims)
        if node.op == "input":
            values.append(np.broadcast_to(np.asarray(inputs[i]), shape))
        elif node.op == "const":
            values.append(np.full(shape, node.value))
        else:
            fn = table[(op.name, op.signature)]
            args = [values[j] for j in node.inputs]
            if op.variadic:
                args = [np.stack(args)]
            values.append(fn(context, *args) if op.uses_context else fn(*args))
    return [values[o] for o in program.outputs]


def dqn_loss():
    """(Q(s,a) - (r + max_a Q_targ(s, a)))^2 per sample, and the Q-values."""
    nodes = [Node("input")] * 5 + [
        Node("qvalues", (0, 2)),  # 5
        Node("select", (5, 1)),  # 6
        Node("qvalues", (4, 2)),  # 7
        Node("max_list", (7,)),  # 8
        Node("add", (3, 8)),  # 9
        Node("sub", (6, 9)),  # 10
        Node("square", (10,)),  # 11
    ]
    return Program(tuple(nodes), (11, 5), "rl")


def test_bare_strings_are_elementwise_float32_types():
    vocab = Vocabulary((Input("x", "real"),), ("real",), elementwise_ops(["add"], "real"), 8, const_type="real")
    assert vocab.inputs[0].type == ValueType("real") == ValueType("real", (), "float32")
    assert vocab.ops[0].input_types == (ValueType("real"), ValueType("real"))
    assert vocab.const_type == "real" and vocab.const_types == (ValueType("real"),)
    assert dict(vocab.types) == {"real": ValueType("real")}


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: Vocabulary((Input("x", LIST),), ("list",), (Op("neg", (ValueType("list", (3,)),), LIST),)), "type 'list' is"),
        (lambda: Vocabulary((Input("x", "a"),), ("a",), (Op("f", ("a",), "a"), Op("f", ("a",), "a"))), "duplicate op f"),
        (lambda: Vocabulary((Input("x", "a"),), ("a",), (Op("s", ("a",), "a", variadic=(1, 3)), Op("s", ("a", "a"), "a"))), "duplicate op s"),
        (lambda: Vocabulary((Input("x", "a"),), ("a",), (Op("add", ("a", "a"), "a", commutative=False),)), "another name"),
        (lambda: Vocabulary((Input("x", "a"),), ("a",), (), const_type="a", const_types=("a",)), "not both"),
        (lambda: Vocabulary((Input("x", "a"),), ("a",), (Op("const", ("a",), "a"),)), "reserved"),
        (lambda: Op("s", ("a", "b"), "a", variadic=(1, 3)), "one type"),
        (lambda: ValueType("v", ("n", -1)), "shape entry"),
        (lambda: ValueType("v", dtype="float99"), "unknown dtype"),
    ],
)
def test_vocabulary_rejects_ambiguous_declarations(build, message):
    with pytest.raises(ValueError, match=message):
        build()


# ---------------------------------------------------------------------------- validation
def test_overloads_resolve_by_argument_types():
    program = dqn_loss().validate(RL)
    types, ops = program.node_types_and_ops(RL)
    assert types[5:] == ["list", "float", "list", "float", "float", "float", "float"]
    assert ops[9].signature == "(float, float)"
    broadcast = Program(dqn_loss().nodes + (Node("add", (3, 5)), Node("add", (5, 3))), (11, 12), "rl").validate(RL)
    assert [op.signature for op in broadcast.node_types_and_ops(RL)[1][12:]] == ["(float, list)", "(list, float)"]
    # add is commutative in every space: both spellings of the broadcast are one program
    assert Program(broadcast.nodes, (11, 12), "rl") == Program(broadcast.nodes, (11, 13), "rl")


def prog(nodes, outputs, space="rl"):
    return Program(tuple(nodes), tuple(outputs), space)


CELL = ValueType("cell", ("c",))
NAS = Vocabulary(
    inputs=(Input("x", CELL),),
    output_types=(CELL,),
    ops=(
        Op("conv", (CELL,), CELL, lambda v, m: jnp.tanh(masked_sum(v, m)), variadic=(1, 3)),
        Op("pool", (CELL,), CELL, lambda v, m: jax.nn.relu(masked_sum(v, m)), variadic=(1, 3)),
        Op("scale", (CELL,), CELL, lambda v: 0.5 * v),
    ),
    max_nodes=8,
    rules=(lambda p: None if p.num_edges <= 6 else f"at most 6 edges, got {p.num_edges}",),
)
NUMPY_NAS = {
    ("conv", "(cell x 1..3)"): lambda v: np.tanh(v.sum(axis=0)),
    ("pool", "(cell x 1..3)"): lambda v: np.maximum(v.sum(axis=0), 0),
    ("scale", "(cell)"): lambda v: 0.5 * v,
}
INPUTS5 = [Node("input")] * 5


@pytest.mark.parametrize(
    "vocab, nodes, outputs, message",
    [
        (RL, INPUTS5 + [Node("add", (3, 1))], [5, 5], "node 5 (add): no add takes (float, action); its overloads take (float, float), (list, list)"),
        (RL, INPUTS5 + [Node("select", (2, 1))], [5, 5], "node 5 (select): input 0 must be of type list, but node 2 is of type state"),
        (RL, INPUTS5 + [Node("const", (), 1.0, "state")], [5, 5], "node 5 (const): a constant of this space is of type float, list, not 'state'"),
        (RL, INPUTS5 + [Node("max_list", (3,), type="float")], [5, 5], "node 5 (max_list): only constants carry a type"),
        (RL, INPUTS5 + [Node("sub", (3, 3), unordered=True)], [5, 5], "node 5 (sub): only the node of a variadic op is unordered"),
        (RL, INPUTS5 + [Node("const", (), 1.0, "list")], [5, 5], "output 0 must be of type float, but node 5 is list"),
        (NAS, [Node("input"), Node("conv", (0, 0), unordered=True)], [1], "node 1 (conv): reads node 0 twice"),
        (NAS, [Node("input"), Node("conv", (0,))], [1], "node 1 (conv): the node of variadic op conv must be marked unordered"),
        (NAS, [Node("input"), Node("conv", (), unordered=True)], [1], "node 1 (conv): takes 1 to 3 inputs, got 0"),
        (NAS, [Node("input"), Node("scale", (0,)), Node("scale", (1,)), Node("scale", (2,)), Node("conv", (0, 1, 2, 3), unordered=True)], [4], "takes 1 to 3 inputs, got 4"),
    ],
)
def test_validation_names_node_and_typed_rule(vocab, nodes, outputs, message):
    with pytest.raises(ProgramError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prog(nodes, outputs).validate(vocab)


def test_validation_applies_the_space_rules():
    nodes = [Node("input"), Node("scale", (0,)), Node("scale", (1,)), Node("scale", (2,))]
    nodes += [Node("conv", (0, 1, 2), unordered=True), Node("pool", (1, 3, 4), unordered=True)]
    with pytest.raises(ProgramError, match="program breaks a rule of the space: at most 6 edges, got 9"):
        prog(nodes, [5]).validate(NAS)
    assert prog(nodes[:5], [4]).validate(NAS).num_edges == 6


# ---------------------------------------------------------------------------- identity and JSON
def test_variadic_inputs_are_a_set_to_the_digest():
    one = prog([Node("input"), Node("scale", (0,)), Node("scale", (1,)), Node("conv", (0, 1, 2), unordered=True)], [3])
    two = prog([Node("input"), Node("scale", (0,)), Node("scale", (1,)), Node("conv", (2, 0, 1), unordered=True)], [3])
    fewer = prog([Node("input"), Node("scale", (0,)), Node("conv", (0, 1), unordered=True)], [2])
    assert one == two and one != fewer
    # the same set of vertices, written in another SSA order
    three = prog([Node("input"), Node("scale", (0,)), Node("pool", (0,), unordered=True), Node("conv", (2, 1), unordered=True)], [3])
    four = prog([Node("input"), Node("pool", (0,), unordered=True), Node("scale", (0,)), Node("conv", (1, 2), unordered=True)], [3])
    assert three == four


def test_constant_types_are_part_of_identity():
    scalar = prog(INPUTS5 + [Node("const", (), 2.0)], [5, 5])
    as_list = prog(INPUTS5 + [Node("const", (), 2.0, "list")], [5, 5])
    assert scalar != as_list


def test_json_round_trip_of_every_new_field():
    p = prog(
        [Node("input"), Node("const", (), 0.5, "half"), Node("scale", (0,)), Node("conv", (2, 0), unordered=True)], [3], "nas"
    )
    data = json.loads(p.to_json())
    assert data["nodes"][1] == {"op": "const", "value": 0.5, "type": "half"}
    assert data["nodes"][3] == {"op": "conv", "inputs": [2, 0], "unordered": True}
    assert "type" not in data["nodes"][2] and "unordered" not in data["nodes"][2]
    back = Program.from_json(p.to_json())
    assert back.nodes == p.nodes and back.digest == p.digest


@pytest.mark.parametrize(
    "node, message",
    [({"op": "const", "value": 1.0, "type": 3}, '"type" must be a type name'), ({"op": "conv", "inputs": [0], "unordered": "yes"}, '"unordered" must be true or false')],
)
def test_malformed_new_fields_are_one_clear_error(node, message):
    text = json.dumps({"format": "evolve.program", "version": 1, "space": "x", "nodes": [{"op": "input"}, node], "outputs": [1]})
    with pytest.raises(ProgramError, match=message):
        Program.from_json(text)


def test_to_networkx_shows_types_and_sets():
    g = prog([Node("input"), Node("const", (), 0.5, "half"), Node("conv", (0,), unordered=True)], [2]).to_networkx()
    assert g.nodes[1]["type"] == "half" and g.nodes[2]["unordered"] and not g.nodes[0]["unordered"]


# ---------------------------------------------------------------------------- mutation
@pytest.mark.parametrize("vocab", [RL, NAS], ids=["rl", "nas"])
def test_random_programs_and_mutations_are_valid_and_obey_rules(vocab):
    rng = np.random.default_rng(0)
    randoms = [mutation.random_program(vocab, "typed", rng) for _ in range(1000)]
    for program in randoms:
        program.validate(vocab)
    program = randoms[0]
    seen = set()
    for _ in range(1000):
        child = mutation.mutate(program, vocab, rng)
        child.validate(vocab)  # types, distinct variadic inputs, the rules
        assert child != program
        seen.update(node.op for node in child.nodes)
        program = child
    assert seen >= {op.name for op in vocab.ops}
    if vocab is NAS:
        assert max(p.num_edges for p in randoms) == 6  # the rule binds, and is obeyed
        assert any(len(n.inputs) == 3 for p in randoms for n in p.nodes if n.unordered)


@pytest.mark.parametrize("kind", mutation.MUTATIONS[:4] + mutation.VARIADIC_MUTATIONS, ids=lambda k: k.__name__)
def test_each_mutation_keeps_variadic_programs_valid(kind):
    """Each mutation alone keeps types and distinct variadic inputs (`mutate` adds the rules)."""
    without_rules = Vocabulary(NAS.inputs, NAS.output_types, NAS.ops, NAS.max_nodes)
    rng = np.random.default_rng(2)
    applied = 0
    for _ in range(300):
        program = mutation.random_program(NAS, "nas", rng)
        child = kind(program, NAS, rng)
        if child is not None:
            child.pruned().validate(without_rules)
            applied += 1
    assert applied > 0


def test_constants_of_each_type_are_drawn():
    rng = np.random.default_rng(3)
    types = {node.type for _ in range(300) for node in mutation.random_program(RL, "rl", rng).nodes if node.op == "const"}
    assert types == {None, "list"}  # None: the default constant type (float)


def test_a_rule_no_program_can_obey_is_a_clear_mutation_error():
    never = Vocabulary(NAS.inputs, NAS.output_types, NAS.ops, NAS.max_nodes, rules=(lambda p: "no edges at all",))
    with pytest.raises(MutationError, match="could not build a random program .* in 100 tries: no edges at all"):
        mutation.random_program(never, "nas", np.random.default_rng(0))
    seed = prog([Node("input"), Node("conv", (0,), unordered=True)], [1])
    only_seed = Vocabulary(NAS.inputs, NAS.output_types, NAS.ops, NAS.max_nodes, rules=(lambda p: None if p == seed else "only the seed",))
    with pytest.raises(MutationError, match="obeyed the space's rules in 100 tries: only the seed"):
        mutation.mutate(seed, only_seed, np.random.default_rng(0))


# ---------------------------------------------------------------------------- the interpreter
def traced_runner(interpreter, dims):
    """jit(run) that counts its traces (a Python side effect runs only while tracing)."""
    traces = []

    @jax.jit
    def run(lowered, inputs, context):
        traces.append(1)
        return interpreter.run(lowered, inputs, dims=dims, context=context)

    return run, traces


def one(interpreter, program):
    return jax.tree.map(lambda a: jnp.asarray(a[0]), interpreter.lower([program]))


def test_rl_programs_run_with_one_compilation_and_match_numpy():
    rng = np.random.default_rng(0)
    interpreter = Interpreter(RL)
    dims = {"actions": ACTIONS}  # "obs" is read from the state input
    run, traces = traced_runner(interpreter, dims)
    context = {"weights": rng.normal(size=(2, OBS, ACTIONS)).astype(np.float32)}
    hand = [
        dqn_loss(),
        prog(INPUTS5 + [Node("mean_batch", (3,)), Node("const", (), 0.5), Node("add", (5, 6)), Node("qvalues", (0, 2)), Node("const", (), 2.0, "list"), Node("add", (9, 8))], [7, 10]),
        prog(INPUTS5 + [Node("qvalues", (4, 2)), Node("add", (3, 5)), Node("max_list", (6,))], [7, 6]),
    ]
    programs = hand + [mutation.random_program(RL, "rl", rng, max_ops=12) for _ in range(20)]
    for program in programs:
        program.validate(RL)
        inputs = rl_inputs(rng)
        loss, q = run(one(interpreter, program), inputs, context)
        want_loss, want_q = numpy_run(program, RL, NUMPY_RL, inputs, {"actions": ACTIONS, "obs": OBS}, context)
        assert loss.shape == (BATCH,) and loss.dtype == jnp.float32 and q.shape == (BATCH, ACTIONS)
        np.testing.assert_allclose(loss, want_loss, rtol=1e-5, atol=1e-5, err_msg=repr(program))
        np.testing.assert_allclose(q, want_q, rtol=1e-5, atol=1e-5, err_msg=repr(program))
    assert len(traces) == 1


def test_variadic_programs_run_with_one_compilation_and_match_numpy():
    rng = np.random.default_rng(1)
    interpreter = Interpreter(NAS)
    run, traces = traced_runner(interpreter, None)
    for _ in range(20):
        program = mutation.random_program(NAS, "nas", rng)
        x = rng.normal(size=(1, BATCH, 5)).astype(np.float32)  # stacked inputs; "c" read from them
        got = run(one(interpreter, program), x, None)
        [want] = numpy_run(program, NAS, NUMPY_NAS, x, {"c": 5})
        assert got.shape == (1, BATCH, 5)
        np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6, err_msg=repr(program))
    assert len(traces) == 1


def test_context_is_data_not_a_recompilation():
    vocab = Vocabulary((Input("x", "real"),), ("real",), (Op("affine", ("real",), "real", lambda ctx, x: ctx["w"] * x + ctx["b"], uses_context=True),), 4)
    interpreter = Interpreter(vocab)
    run, traces = traced_runner(interpreter, None)
    program = prog([Node("input"), Node("affine", (0,)), Node("affine", (1,))], [2])
    x = np.arange(3, dtype=np.float32)[None]
    for w, b in [(2.0, 1.0), (-1.0, 0.5), (0.0, 3.0)]:
        got = run(one(interpreter, program), x, {"w": jnp.float32(w), "b": jnp.float32(b)})
        np.testing.assert_allclose(got[0], w * (w * x[0] + b) + b)
    assert len(traces) == 1


def test_inputs_stacked_or_one_array_each_give_the_same_values():
    vocab = Vocabulary((Input("a", "real"), Input("b", "real")), ("real",), elementwise_ops(["sub", "sin"], "real"), 6)
    interpreter = Interpreter(vocab)
    program = one(interpreter, prog([Node("input"), Node("input"), Node("sub", (1, 0)), Node("sin", (2,))], [3]))
    x = np.random.default_rng(0).normal(size=(2, 7)).astype(np.float32)
    stacked = interpreter.run(program, x)
    np.testing.assert_array_equal(stacked, interpreter.run(program, [x[0], x[1]]))
    np.testing.assert_allclose(stacked[0], np.sin(x[1] - x[0]), rtol=1e-6)
    # a scalar input broadcasts to the others' element shape
    np.testing.assert_allclose(interpreter.run(program, [np.float32(1.0), x[1]])[0], np.sin(x[1] - 1), rtol=1e-6)


def test_missing_dimensions_and_bad_shapes_are_clear_errors():
    interpreter = Interpreter(RL)
    program = one(interpreter, dqn_loss())
    inputs = rl_inputs(np.random.default_rng(0))
    with pytest.raises(ValueError, match="type list needs the size of dimension 'actions'"):
        interpreter.run(program, inputs, context={"weights": np.zeros((2, OBS, ACTIONS), np.float32)})
    with pytest.raises(ValueError, match="'obs' is 5"):
        interpreter.run(program, inputs, dims={"actions": ACTIONS, "obs": 5})
    with pytest.raises(ValueError, match="takes 5 inputs, got 2"):
        interpreter.run(program, inputs[:2], dims={"actions": ACTIONS})
    bad = Vocabulary((Input("q", LIST),), ("float",), (Op("first", (LIST,), FLOAT, lambda q: q[..., :1]),), 4)
    lowered = one(Interpreter(bad), prog([Node("input"), Node("first", (0,))], [1]))
    with pytest.raises(ValueError, match=r"op first\(list\) returned shape \(4, 1\), which does not broadcast to \(4,\)"):
        Interpreter(bad).run(lowered, [np.zeros((4, 3), np.float32)])
