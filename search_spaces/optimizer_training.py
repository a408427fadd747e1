"""The inner training loop, compiled once with the optimizer program as data (design.md section 6).

`suite_trainer` builds one jitted function that trains every task of a suite with one lowered
program, vmapped over learning rates and seeds. A new candidate is new array *values* for that
function, never a new compilation. `train` is the same loop for any optimizer (a program, or an
optax transformation for comparison).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import optax

from evolve.interpreter import Interpreter, LoweredPrograms
from evolve.search_spaces.optimizer_tasks import Task

#: update(params, grad, state, t) -> (new params, new state); t is the 1-based step, float32.
Update = Callable[[jax.Array, jax.Array, Any, jax.Array], tuple[jax.Array, Any]]


def train(task: Task, steps: int, key: jax.Array, state: Any, update: Update) -> jax.Array:
    """Full-batch training of `task` from its initialisation for `key`; returns the final parameters."""

    def step(carry, t):
        params, state = carry
        return update(params, jax.grad(task.loss)(params), state, t), None

    params = task.init(key)
    (params, _), _ = jax.lax.scan(step, (params, state(params)), jnp.arange(1, steps + 1, dtype=jnp.float32))
    return params


def program_update(interpreter: Interpreter, program: LoweredPrograms, lr: jax.Array) -> tuple[Callable, Update]:
    """(initial state, update) of one lowered program: p <- p - lr * u, (m, v) <- the program's m, v."""

    def init(params):
        return jnp.zeros_like(params), jnp.zeros_like(params)

    def update(params, grad, state, t):
        m, v = state
        inputs = jnp.stack([grad, params, m, v, jnp.full_like(params, t)])
        u, m, v = interpreter.run(program, inputs)
        return params - lr * u, (m, v)

    return init, update


def optax_update(tx: optax.GradientTransformation) -> tuple[Callable, Update]:
    """(initial state, update) of an optax transformation, for comparisons with programs."""

    def update(params, grad, state, t):
        updates, state = tx.update(grad, state, params)
        return optax.apply_updates(params, updates), state

    return tx.init, update


def suite_trainer(interpreter: Interpreter, tasks: Sequence[Task], steps: int) -> Callable:
    """jit(f)(program, lrs [L], seeds [S]) -> (initial losses [T, S], final losses [T, L, S]).

    `program` is ONE lowered program (no batch axis)."""

    def one(task: Task, program, lr, seed):
        key = jax.random.key(seed)
        init, update = program_update(interpreter, program, lr)
        return task.loss(task.init(key)), task.loss(train(task, steps, key, init, update))

    def trainer(program, lrs, seeds):
        initial, final = [], []
        for task in tasks:
            per_seed = jax.vmap(lambda lr, s, task=task: one(task, program, lr, s), in_axes=(None, 0))
            first, last = jax.vmap(per_seed, in_axes=(0, None))(lrs, seeds)
            initial.append(first[0])
            final.append(last)
        return jnp.stack(initial), jnp.stack(final)

    return jax.jit(trainer)
