"""Training with an optimizer: the optimizers space's tasks for the shared harness (evolve/harness.py),
and the short probe rollout whose directions fingerprint a program's behaviour.

An optimizer is a pair (init_state, update): `update(params, grad, state, t)` returns the new
parameters and state, t being the 1-based step as float32. `program_update` makes that pair from a
lowered program (the search's case: the program is data, compiled once); `optax_update` from an
optax transformation (for comparisons). `training_task` turns a problem of optimizer_tasks and an
optimizer into a harness task, so both train in exactly the same loop.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from evolve import harness
from evolve.interpreter import Interpreter, LoweredPrograms, bucket_size, enable_compilation_cache
from evolve.ops import Vocabulary
from evolve.program import Program
from evolve.search_spaces.optimizer_tasks import Task

#: update(params, grad, state, t) -> (new params, new state); t is the 1-based step, float32.
Update = Callable[[jax.Array, jax.Array, Any, jax.Array], tuple[jax.Array, Any]]
#: optimizer(program, lr) -> (init_state(params) -> state, update); program is whatever the harness passes.
Optimizer = Callable[[Any, jax.Array], tuple[Callable, Update]]

#: probe rollout for behaviour fingerprints: steps, elements, learning rate
PROBE_STEPS, PROBE_SIZE, PROBE_LR = 8, 12, 0.1


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


def training_task(problem: Task, steps: int, optimizer: Optimizer) -> harness.Task:
    """`problem` trained full-batch for `steps` steps by `optimizer(program, lr)`, lr being the
    harness's grid point.

    State: (parameters, optimizer state, loss at initialisation). Outcome: (loss at initialisation,
    final loss), float32 scalars per run."""

    def init(program, lr, key):
        params = problem.init(key)
        state, _ = optimizer(program, lr)
        return params, state(params), problem.loss(params)

    def step(program, lr, carry, t):
        params, state, initial = carry
        _, update = optimizer(program, lr)
        params, state = update(params, jax.grad(problem.loss)(params), state, (t + 1).astype(jnp.float32))
        return params, state, initial

    def score(program, lr, carry):
        params, _, initial = carry
        return initial, problem.loss(params)

    return harness.Task(problem.name, init, step, score, steps)


def interpreted(interpreter: Interpreter) -> Optimizer:
    """The optimizer of the search: the program the harness passes, run by `interpreter`."""
    return lambda program, lr: program_update(interpreter, program, lr)


class Probe:
    """Behaviour fingerprints: the directions u of PROBE_STEPS steps on a fixed noisy quadratic.

    Built by the grammar on its first `fingerprints` call (its jit compiles then, in about a second),
    never by its constructor."""

    def __init__(self, vocab: Vocabulary):
        enable_compilation_cache()
        self.interpreter = Interpreter(vocab)
        self._directions = jax.jit(jax.vmap(self._rollout, in_axes=(0, None)))
        self._problem = _probe_problem()

    def _rollout(self, program: LoweredPrograms, problem: tuple[jax.Array, jax.Array]) -> jax.Array:
        scales, noise = problem
        init, update = program_update(self.interpreter, program, jnp.float32(PROBE_LR))

        def step(carry, inputs):
            params, state = carry
            t, eps = inputs
            new_params, state = update(params, scales * params + eps, state, t)
            return (new_params, state), (params - new_params) / PROBE_LR

        params = jnp.ones(PROBE_SIZE, jnp.float32)
        ts = jnp.arange(1, PROBE_STEPS + 1, dtype=jnp.float32)
        _, directions = jax.lax.scan(step, (params, init(params)), (ts, noise))
        return directions

    def fingerprints(self, programs: Sequence[Program]) -> list[str]:
        """Directions of the probe rollout, to 5 significant digits, hashed."""
        lowered = self.interpreter.lower(programs, pad_to=bucket_size(len(programs)))
        rows = np.asarray(self._directions(lowered, self._problem), np.float64)[: len(programs)]
        out = []
        for row in rows.reshape(len(programs), -1):
            text = ",".join(f"{v:.5g}" for v in row.tolist())
            out.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
        return out


def _probe_problem() -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(0)
    scales = jnp.asarray(rng.uniform(0.1, 2.0, PROBE_SIZE), jnp.float32)
    noise = jnp.asarray(0.3 * rng.normal(size=(PROBE_STEPS, PROBE_SIZE)), jnp.float32)
    return scales, noise
