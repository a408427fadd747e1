"""The interpreter's hand-written backward pass (`Interpreter(vocab, recompute_gradients=True)`, which
the RL-loss DQN trains with) against JAX's own differentiation of the plain interpreter: same values,
same gradients with respect to float inputs, the context's arrays and the constants, on random typed
programs (several types, integer inputs, two output types, a variadic op, ops with context), with one
compilation for all programs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from evolve import mutation
from evolve.interpreter import Interpreter
from evolve.ops import Input, Op, ValueType, Vocabulary, masked_sum
from evolve.program import Node, Program

FLOAT = ValueType("float")
LIST = ValueType("list", ("actions",))
STATE = ValueType("state", ("obs",))
ACTION = ValueType("action", dtype="int32")
PARAM = ValueType("param", dtype="int32")
BATCH, OBS, ACTIONS = 5, 3, 4


def q_values(context, param, state):
    return jnp.einsum("bo,boa->ba", state, context["weights"][param])


VOCAB = Vocabulary(
    inputs=(Input("q_param", PARAM), Input("action", ACTION), Input("s", STATE), Input("r", FLOAT), Input("q_targ_param", PARAM)),
    output_types=(FLOAT, LIST),
    ops=(
        Op("qvalues", (PARAM, STATE), LIST, q_values, uses_context=True),
        Op("select", (LIST, ACTION), FLOAT, lambda q, a: jnp.take_along_axis(q, a[..., None], axis=-1)[..., 0]),
        Op("argmax", (LIST,), ACTION, lambda q: jnp.argmax(q, axis=-1).astype(jnp.int32)),
        Op("max_list", (LIST,), FLOAT, lambda q: q.max(axis=-1)),
        Op("softmax", (LIST,), LIST, lambda q: jax.nn.softmax(q, axis=-1)),
        Op("mean_batch", (FLOAT,), FLOAT, lambda x: x.mean()),
        Op("add", (FLOAT, LIST), LIST, lambda s, q: s[..., None] + q),
        Op("sub", (FLOAT, FLOAT), FLOAT, jnp.subtract),
        Op("mul", (FLOAT, FLOAT), FLOAT, jnp.multiply),
        Op("sin", (FLOAT,), FLOAT, jnp.sin),
        Op("sum", (LIST,), LIST, masked_sum, variadic=(2, 3)),
        Op("dot", (STATE, STATE), FLOAT, lambda x, y: jnp.sum(x * y, axis=-1)),
    ),
    max_nodes=20,
    const_types=(FLOAT, LIST),
)


def inputs(rng):
    return [
        np.int32(0),
        rng.integers(0, ACTIONS, BATCH).astype(np.int32),
        rng.normal(size=(BATCH, OBS)).astype(np.float32),
        rng.normal(size=BATCH).astype(np.float32),
        np.int32(1),
    ]


def value_and_grad(interpreter, traces):
    """(loss, d loss / d (s, r, weights, consts)) of a scalar made of both outputs, jitted."""

    def loss(s, r, weights, consts, program, rest):
        program = dataclasses.replace(program, consts=consts)
        out, q = interpreter.run(program, [rest[0], rest[1], s, r, rest[2]], dims={"actions": ACTIONS}, context={"weights": weights})
        return jnp.sum(out**2) + jnp.sum(jnp.sin(q))

    def run(program, values, weights):
        traces.append(1)
        return jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(values[2], values[3], weights, program.consts, program, [values[0], values[1], values[4]])

    return jax.jit(run)


def test_hand_written_backward_pass_matches_jax_differentiation():
    rng = np.random.default_rng(0)
    plain, recomputing = Interpreter(VOCAB), Interpreter(VOCAB, recompute_gradients=True)
    traces_plain, traces_recomputing = [], []
    run_plain, run_recomputing = value_and_grad(plain, traces_plain), value_and_grad(recomputing, traces_recomputing)
    weights = rng.normal(size=(2, OBS, ACTIONS)).astype(np.float32)
    programs = [mutation.random_program(VOCAB, "t", rng, max_ops=12) for _ in range(30)]
    # a node no output reads, and outputs that are inputs, constants, or read by other nodes
    programs.append(Program((Node("input"),) * 5 + (Node("qvalues", (0, 2)), Node("sin", (3,)), Node("const", (), 0.5)), (7, 5), "t"))
    for program in programs:
        lowered = jax.tree.map(lambda a: jnp.asarray(a[0]), plain.lower([program]))
        values = inputs(rng)
        want = run_plain(lowered, values, weights)
        got = run_recomputing(lowered, values, weights)
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5, err_msg=repr(program))
    assert len(traces_plain) == len(traces_recomputing) == 1


def test_hand_written_backward_pass_under_vmap_over_data():
    """As the DQN runs it: one program, the data and context vmapped (seeds)."""
    rng = np.random.default_rng(1)
    recomputing = Interpreter(VOCAB, recompute_gradients=True)
    run = value_and_grad(recomputing, [])
    batched = jax.jit(jax.vmap(run, in_axes=(None, 0, 0)))
    program = Program((Node("input"),) * 5 + (Node("qvalues", (0, 2)), Node("select", (5, 1)), Node("qvalues", (4, 2)), Node("softmax", (7,)),
                                               Node("max_list", (8,)), Node("sub", (6, 9)), Node("mul", (10, 3))), (11, 8), "t")
    lowered = jax.tree.map(lambda a: jnp.asarray(a[0]), recomputing.lower([program]))
    data = [inputs(rng) for _ in range(3)]
    weights = rng.normal(size=(3, 2, OBS, ACTIONS)).astype(np.float32)
    stacked = jax.tree.map(lambda *a: np.stack(a), *data)
    got = batched(lowered, stacked, weights)
    for k in range(3):
        want = run(lowered, data[k], weights[k])
        for w, g in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
            np.testing.assert_allclose(g[k], w, rtol=1e-5, atol=1e-6)
