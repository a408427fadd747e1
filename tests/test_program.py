"""The program contract: validation names the broken rule, hashing ignores spelling, JSON round-trips."""

import json
import pickle

import networkx as nx
import pytest

from evolve.errors import ProgramError
from evolve.ops import Input, Vocabulary, elementwise_ops
from evolve.program import Node, Program

VOCAB = Vocabulary(
    inputs=(Input("a", "real"), Input("b", "real")),
    output_types=("real",),
    ops=elementwise_ops(["add", "sub", "mul", "sin"], "real"),
    max_nodes=8,
    const_type="real",
)


def prog(nodes, outputs):
    return Program(tuple(nodes), tuple(outputs), "toy")


A_MINUS_B = prog([Node("input"), Node("input"), Node("sub", (0, 1))], [2])


def test_valid_program_passes():
    assert A_MINUS_B.validate(VOCAB) is A_MINUS_B


@pytest.mark.parametrize(
    "nodes, outputs, message",
    [
        ([Node("input"), Node("input"), Node("sub", (0, 3))], [2], "node 2 (sub): input 1 refers to node 3"),
        ([Node("input"), Node("input"), Node("pow", (0, 1))], [2], "node 2 (pow): unknown op"),
        ([Node("input"), Node("input"), Node("sin", (0, 1))], [2], "node 2 (sin): takes 1 inputs, got 2"),
        ([Node("input"), Node("input"), Node("input")], [2], "node 2 (input): inputs may only be the first 2 nodes"),
        ([Node("input"), Node("input"), Node("const", (), float("nan"))], [2], "node 2 (const): a constant needs a finite value"),
        ([Node("input"), Node("input")], [5], "output 0 refers to node 5"),
        ([Node("input"), Node("input")] + [Node("sin", (0,))] * 7, [8], "9 nodes; the limit is 8"),
    ],
)
def test_validation_names_node_and_rule(nodes, outputs, message):
    with pytest.raises(ProgramError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prog(nodes, outputs).validate(VOCAB)


def test_type_rule_is_checked():
    vocab = Vocabulary((Input("v", "vector"),), ("scalar",), elementwise_ops(["sin"], "scalar"), 8)
    with pytest.raises(ProgramError, match="input 0 must be of type scalar, but node 0 is of type vector"):
        prog([Node("input"), Node("sin", (0,))], [1]).validate(vocab)


def test_commutative_spellings_are_one_program():
    a_plus_b = prog([Node("input"), Node("input"), Node("add", (0, 1))], [2])
    b_plus_a = prog([Node("input"), Node("input"), Node("add", (1, 0))], [2])
    b_minus_a = prog([Node("input"), Node("input"), Node("sub", (1, 0))], [2])
    assert a_plus_b == b_plus_a and hash(a_plus_b) == hash(b_plus_a)
    assert A_MINUS_B != b_minus_a


def test_identity_depends_on_the_program_alone():
    """add, mul, min, max are sorted in every space; an op of another name is hashed in order even if
    some vocabulary calls it commutative: no table filled elsewhere changes a program's identity."""
    from evolve.ops import Op

    Vocabulary((Input("a", "real"),), ("real",), (Op("hypot", ("real", "real"), "real", commutative=True),))
    hypot_ab = prog([Node("input"), Node("input"), Node("hypot", (0, 1))], [2])
    hypot_ba = prog([Node("input"), Node("input"), Node("hypot", (1, 0))], [2])
    assert hypot_ab != hypot_ba
    for name in ("add", "mul", "min", "max"):
        assert prog([Node("input"), Node("input"), Node(name, (0, 1))], [2]) == prog([Node("input"), Node("input"), Node(name, (1, 0))], [2])


def test_dead_nodes_and_node_order_do_not_change_identity():
    with_dead = prog([Node("input"), Node("input"), Node("sin", (0,)), Node("sub", (0, 1))], [3])
    assert with_dead.pruned().nodes == A_MINUS_B.nodes
    assert with_dead == A_MINUS_B
    # the same computation, nodes in another SSA order
    one = prog([Node("input"), Node("input"), Node("sin", (0,)), Node("sin", (1,)), Node("sub", (2, 3))], [4])
    two = prog([Node("input"), Node("input"), Node("sin", (1,)), Node("sin", (0,)), Node("sub", (3, 2))], [4])
    assert one == two


def test_pruning_keeps_inputs_and_reindexes():
    p = prog([Node("input"), Node("input"), Node("sin", (1,)), Node("const", (), 2.0), Node("mul", (0, 3))], [4])
    pruned = p.pruned()
    assert [n.op for n in pruned.nodes] == ["input", "input", "const", "mul"]
    assert pruned.nodes[3].inputs == (0, 2) and pruned.outputs == (3,)
    pruned.validate(VOCAB)


def test_a_validated_program_pickles_as_its_data():
    """What a program remembers (its vocabulary holds the ops' functions) is not pickled: the
    standard pickle can send a checked program to another process, and Ray's sends it small."""
    p = prog([Node("input"), Node("input"), Node("const", (), 0.9), Node("mul", (2, 1))], [3]).validate(VOCAB)
    assert p.node_types_and_ops(VOCAB)[0] == ["real"] * 4
    back = pickle.loads(pickle.dumps(p))
    assert back == p and back.nodes == p.nodes and back.outputs == p.outputs
    assert len(pickle.dumps(p)) == len(pickle.dumps(prog(p.nodes, p.outputs)))
    assert back.validate(VOCAB).node_types_and_ops(VOCAB) == p.node_types_and_ops(VOCAB)


def test_node_types_are_the_callers_own():
    p = A_MINUS_B.validate(VOCAB)
    types, ops = p.node_types_and_ops(VOCAB)
    types.append("garbage"), ops.clear()
    assert p.node_types_and_ops(VOCAB) == (["real"] * 3, [None, None, VOCAB.overloads("sub")[0]])


def test_json_round_trip_is_exact_and_versioned():
    p = prog([Node("input"), Node("input"), Node("const", (), 0.9), Node("mul", (2, 1)), Node("sub", (0, 3))], [4])
    data = json.loads(p.to_json())
    assert data["format"] == "evolve.program" and data["version"] == 1
    back = Program.from_json(p.to_json())
    assert back.nodes == p.nodes and back.outputs == p.outputs and back.space == p.space


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ('{"nodes": []}', "not an evolve program"),
        ('{"format": "evolve.program", "version": 99, "nodes": [], "outputs": [], "space": "x"}', "unsupported program version 99"),
        ('{"format": "evolve.program", "version": 1, "outputs": [], "space": "x"}', "missing the field 'nodes'"),
        ('{"format": "evolve.program", "version": 1, "nodes": [{"op": "add", "inputs": "01"}], "outputs": [0], "space": "x"}', "node 0"),
        ('{"format": "evolve.program", "version": 1, "nodes": [{"op": "const", "value": "__import__"}], "outputs": [0], "space": "x"}', "must be a number"),
    ],
)
def test_malformed_json_is_one_clear_error(text, message):
    with pytest.raises(ProgramError, match=message):
        Program.from_json(text)


def test_to_networkx_keeps_argument_positions():
    g = A_MINUS_B.to_networkx()
    assert isinstance(g, nx.DiGraph)
    assert g.edges[0, 2]["position"] == 0 and g.edges[1, 2]["position"] == 1
    assert g.nodes[2]["op"] == "sub" and g.nodes[2]["is_output"]
    square = prog([Node("input"), Node("input"), Node("mul", (0, 0))], [2]).to_networkx()
    assert square.edges[0, 2]["positions"] == [0, 1]
