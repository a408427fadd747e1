"""One compile-once training harness for every space that scores a program by training with it
(design.md 10.3): an optimizer's inner training, a DQN whose loss is the program, a network built
from a cell.

A space writes each training problem as a `Task`: three pure functions, `init`, `step` and `score`,
of the program, one point of a hyperparameter grid and the training state, in the style of optax's
`GradientTransformation` (pure functions, state as pytrees of arrays). The `Harness` compiles each
task once, as

    jit(vmap over the grid(vmap over seeds(init -> lax.scan of step -> score)))

with the program as an ARGUMENT: a program is arrays (e.g. one `LoweredPrograms` row), so the next
candidate is new values for the same compiled function, never a new compilation. Seeds and
hyperparameters are vmapped; programs are not, because an interpreted program branches with
`lax.switch`, which under a vmap over programs runs every op at every node (design.md 6).

`ReferenceNormalizer` scores a program task by task relative to a reference program (Adam for
optimizers, DQN's loss for RL) trained once, with a formula the space supplies; the reference
scores exactly 1 on every task, which is checked when it is built.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Generic, Protocol, Sequence, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from evolve.errors import OptionError

#: One program as data: a pytree of arrays with no batch axis, e.g. one `LoweredPrograms` row, or a
#: cell's adjacency matrix and op one-hots. Traced: tasks must not branch on its values in Python.
ProgramArrays = Any
#: One point of the hyperparameter grid: a pytree of scalars (e.g. a float32 learning rate).
Hyperparameters = Any
#: Whatever a task carries from step to step: a pytree of arrays (parameters, optimizer state, a PRNG
#: key, a replay buffer, running sums).
State = Any
#: What a task reports about one run: a pytree of arrays (e.g. initial and final loss).
Outcome = Any
Summary = TypeVar("Summary")


class InitFn(Protocol):
    def __call__(self, program: ProgramArrays, hyperparameters: Hyperparameters, key: jax.Array) -> State:
        """The state before the first step of one run.

        Args:
          program: the program being scored, as arrays.
          hyperparameters: this run's point of the grid.
          key: this run's PRNG key, `jax.random.key(seed)`. A task that needs randomness at every
            step (exploration, minibatches) keeps a key in its state and splits it in `step`.

        Returns:
          The initial state. Its structure, shapes and dtypes must stay the same at every step (it is
          a `lax.scan` carry).
        """


class StepFn(Protocol):
    def __call__(self, program: ProgramArrays, hyperparameters: Hyperparameters, state: State, t: jax.Array) -> State:
        """One training step.

        Args:
          program, hyperparameters: as for `init`.
          state: the state after the previous step (or `init`'s).
          t: the index of this step, an int32 scalar: 0, 1, ..., steps - 1.

        Returns:
          The next state, with the structure, shapes and dtypes of `state`.
        """


class ScoreFn(Protocol):
    def __call__(self, program: ProgramArrays, hyperparameters: Hyperparameters, state: State) -> Outcome:
        """What one run achieved, from its final state (e.g. its initial and final loss, or the mean
        return of its last episodes). Non-finite values are allowed: judging a diverged run is the
        space's `summarize`, outside the compiled code."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One training problem: `steps` applications of `step` to `init`'s state, then `score`.

    Everything else the problem needs (data sets, an environment's constants, a network's shape) is
    closed over by the three functions and becomes part of the compiled code.
    """

    name: str
    init: InitFn
    step: StepFn
    score: ScoreFn
    steps: int


class Harness:
    """Trains with one program on every task, at every grid point and seed.

    Each task has its own jitted function, traced and compiled on the first `run` (for the shapes and
    dtypes of that program's arrays), and reused by every later program with arrays of the same
    shapes: `traces` stays at `len(tasks)` whatever the candidates.
    """

    def __init__(self, tasks: Sequence[Task], hyperparameters: Hyperparameters, seeds: Sequence[int]):
        """
        Args:
          tasks: the training problems; their names must be unique.
          hyperparameters: the grid, a pytree whose leaves share a leading axis of size H >= 1 (a
            float32 array of learning rates, or `{"lr": [H], "gamma": [H]}` for a grid the space
            flattened itself). Run (h, s) gets the pytree of the leaves' h-th entries.
          seeds: S >= 1 integers; run (h, s) gets `jax.random.key(seeds[s])`, so runs at different grid
            points with the same seed start from the same initialisation.
        """
        self.tasks = tuple(tasks)
        names = [task.name for task in self.tasks]
        if not names or len(set(names)) != len(names):
            raise OptionError(f"a harness needs tasks with unique names, got {names}")
        if any(task.steps < 1 for task in self.tasks):
            raise OptionError(f"every task needs at least one step: {[(t.name, t.steps) for t in self.tasks]}")
        self.hyperparameters = jax.tree.map(jnp.asarray, hyperparameters)
        sizes = {leaf.shape[0] if leaf.ndim else 0 for leaf in jax.tree.leaves(self.hyperparameters)}
        if len(sizes) != 1 or 0 in sizes:
            raise OptionError("the hyperparameter grid needs leaves that share one leading axis of size >= 1")
        self.grid_size = sizes.pop()
        self.seeds = jnp.asarray(seeds, jnp.int32)
        if self.seeds.ndim != 1 or self.seeds.shape[0] < 1:
            raise OptionError(f"seeds must be a non-empty list of integers, got {seeds!r}")
        #: how many times any task's function was traced (and so compiled): a test's compile counter
        self.traces = 0
        self._runs = tuple(jax.jit(self._every_run(task)) for task in self.tasks)

    def _every_run(self, task: Task) -> Callable:
        """f(program, grid, seeds) -> the outcome of every run, leaves [H, S, ...]."""

        def one_run(program, hyperparameters, seed):
            state = task.init(program, hyperparameters, jax.random.key(seed))

            def body(state, t):
                return task.step(program, hyperparameters, state, t), None

            state, _ = jax.lax.scan(body, state, jnp.arange(task.steps, dtype=jnp.int32))
            return task.score(program, hyperparameters, state)

        per_seed = jax.vmap(one_run, in_axes=(None, None, 0))
        per_grid_point = jax.vmap(per_seed, in_axes=(None, 0, None))

        def every_run(program, hyperparameters, seeds):
            self.traces += 1  # runs only while tracing
            return per_grid_point(program, hyperparameters, seeds)

        return every_run

    def run(self, program: ProgramArrays) -> list[Outcome]:
        """Train every task with `program`.

        Args:
          program: one program as arrays (no batch axis); numpy or JAX.

        Returns:
          Per task, in order, its outcome pytree as numpy arrays with leading axes [H, S].
        """
        # Dispatch every task before reading any result: JAX runs them while Python waits.
        pending = [run(program, self.hyperparameters, self.seeds) for run in self._runs]
        return [jax.tree.map(np.asarray, outcome) for outcome in pending]


class ReferenceNormalizer(Generic[Summary]):
    """Scores programs per task relative to a reference program, trained once when this is built.

    The space supplies the formula as two plain (numpy) functions, run outside the compiled code:

      summarize(outcome) -> summary: one task's outcome over the grid and seeds ([H, S] leaves)
        reduced to what the space compares, e.g. the best learning rate's mean final loss.
      relative(summary, reference_summary) -> float: the task's score; NaN where the program failed
        the task. `relative(r, r)` must be exactly 1.0 for the reference's own summaries: checked.
    """

    def __init__(
        self,
        harness: Harness,
        reference: ProgramArrays,
        summarize: Callable[[Outcome], Summary],
        relative: Callable[[Summary, Summary], float],
        check_reference: Callable[[list[Summary]], None] | None = None,
    ):
        """
        Args:
          harness: trains the programs.
          reference: the reference program as arrays.
          summarize, relative: the space's formula (see the class docstring).
          check_reference: called with the reference's summaries before anything else; raises an
            `EvolveError` in the space's own terms when the reference cannot serve as one (e.g.
            "Adam does not reduce the loss of mlp in 5 steps; raise steps").
        """
        self.harness = harness
        self.summarize = summarize
        self.relative = relative
        self.reference: list[Summary] = [summarize(outcome) for outcome in harness.run(reference)]
        if check_reference is not None:
            check_reference(self.reference)
        own = [relative(summary, summary) for summary in self.reference]
        wrong = [f"{task.name} ({score})" for task, score in zip(harness.tasks, own) if score != 1.0]
        if wrong:
            raise OptionError(f"the reference program does not score exactly 1 on {', '.join(wrong)}")

    def score(self, program: ProgramArrays) -> tuple[list[Summary], np.ndarray]:
        """Train with `program`; per task, its summary and its float64 score relative to the reference
        (NaN where it failed)."""
        summaries = [self.summarize(outcome) for outcome in self.harness.run(program)]
        scores = np.array([self.relative(s, r) for s, r in zip(summaries, self.reference)], np.float64)
        return summaries, scores


def program_rows(batch: Any) -> list[ProgramArrays]:
    """The programs of a batch (a pytree whose leaves have a leading program axis, e.g.
    `LoweredPrograms`) one by one, as the harness takes them."""
    size = jax.tree.leaves(batch)[0].shape[0]
    return [jax.tree.map(lambda leaf: leaf[i], batch) for i in range(size)]
