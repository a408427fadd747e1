"""An optimizer program as a live `optax.GradientTransformation`, computed with the same op functions
the interpreter uses, so it trains exactly as the search's training loop did.

The program gives the direction u and the new state (m, v); the transformation's update is
-learning_rate * u, so `optax.apply_updates` does p <- p - lr * u.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from evolve.ops import CONST, INPUT, Vocabulary
from evolve.program import Program
from evolve.search_spaces.optimizer_programs import INPUT_NAMES, read_inputs


class ProgramState(NamedTuple):
    count: jax.Array
    m: optax.Params
    v: optax.Params


def update_rule(program: Program, vocab: Vocabulary) -> Callable:
    """rule(g, p, m, v, t) -> (u, m, v), computed with the same op functions the interpreter uses."""
    program = program.pruned()
    ops = vocab.op_by_name

    def rule(*inputs):
        values = []
        for i, node in enumerate(program.nodes):
            if node.op == INPUT:
                values.append(inputs[i])
            elif node.op == CONST:
                values.append(jnp.float32(node.value))
            else:
                values.append(ops[node.op].fn(*(values[j] for j in node.inputs)))
        return tuple(jnp.broadcast_to(values[o], inputs[0].shape).astype(inputs[0].dtype) for o in program.outputs)

    return rule


def to_optax(program: Program, vocab: Vocabulary, learning_rate: float) -> optax.GradientTransformation:
    """The program as an optax optimizer: `tx.update(grads, state, params)` returns -lr * u."""
    rule = update_rule(program, vocab)
    reads_params = INPUT_NAMES.index("p") in read_inputs(program)

    def init(params):
        return ProgramState(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params), optax.tree.zeros_like(params))

    def update(grads, state, params=None):
        if params is None and reads_params:
            raise ValueError("this optimizer reads the parameters: pass params to update()")
        params = grads if params is None else params  # never read when reads_params is False
        count = state.count + 1
        t = count.astype(jnp.float32)
        out = jax.tree.map(lambda g, p, m, v: rule(g, p, m, v, t), grads, params, state.m, state.v)
        pick = lambda k: jax.tree.map(lambda _, o: o[k], grads, out)  # noqa: E731
        updates = jax.tree.map(lambda u: -learning_rate * u, pick(0))
        return updates, ProgramState(count, pick(1), pick(2))

    return optax.GradientTransformation(init, update)
