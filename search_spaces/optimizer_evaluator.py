"""The heavy half of the optimizers space: the task suite, the training harness compiled once per
process, and Adam trained once as the reference every fitness is relative to.

Fitness, normalized against Adam on the same tasks and settings:

    loss(task)  = min over lr of (mean over seeds of the final loss)    # the best learning rate
    score(task) = log(L0 / floor(loss)) / log(L0 / floor(loss_adam))    # L0: loss at initialisation
    fitness     = mean over tasks of score clipped to [-1, 2]

where floor(x) = max(x, 1e-6 * L0): a millionfold reduction is as good as it gets (a classifier
that separates its data drives cross-entropy to 0, and log 0 has no scale). So Adam scores exactly 1,
a program that does not move the parameters scores 0, and a fitness above 1 beats Adam. The log
makes "10x lower loss" count the same on every task; the clip keeps one task (a Rosenbrock run that
lands on the minimum, a diverging one) from deciding alone. A learning rate whose runs end
non-finite is skipped; a task on which every learning rate does is a failure.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax.numpy as jnp
import numpy as np

from evolve.errors import OptionError
from evolve.harness import Harness, ReferenceNormalizer, program_rows
from evolve.interpreter import Interpreter, enable_compilation_cache
from evolve.ops import Vocabulary
from evolve.program import Program
from evolve.space import Evaluation, Evaluator

from evolve.search_spaces import optimizer_programs, optimizer_tasks
from evolve.search_spaces.optimizer_training import interpreted, training_task

SCORE_RANGE = (-1.0, 2.0)
LOSS_FLOOR = 1e-6  # relative to the loss at initialisation


@dataclasses.dataclass(frozen=True)
class TaskLosses:
    """One task's training, summarized over the lr grid and seeds (float64).

    initial: mean loss at initialisation; loss: the best learning rate's mean final loss, NaN when
    every learning rate ended non-finite; lr: that learning rate (NaN likewise)."""

    initial: float
    loss: float
    lr: float


class OptimizerEvaluator(Evaluator):
    """Trains each candidate on every task of a suite with the compile-once harness, and scores it
    against Adam (see the module docstring)."""

    def __init__(self, suite: str, steps: int, lr_grid: Sequence[float], seeds: int, vocab: Vocabulary):
        enable_compilation_cache()
        self.interpreter = Interpreter(vocab)
        self.lr_grid = tuple(lr_grid)
        self.steps = steps
        problems = optimizer_tasks.suite(suite)
        self.task_names = tuple(p.name for p in problems)
        optimizer = interpreted(self.interpreter)
        self.harness = Harness(
            [training_task(p, steps, optimizer) for p in problems],
            jnp.asarray(self.lr_grid, jnp.float32),
            range(seeds),
        )
        self.normalizer = ReferenceNormalizer(
            self.harness, self._lowered(optimizer_programs.adam()), self.summarize, relative_score, self._check_adam
        )

    def _lowered(self, program: Program):
        return program_rows(self.interpreter.lower([program]))[0]

    def summarize(self, outcome: tuple[np.ndarray, np.ndarray]) -> TaskLosses:
        """(initial losses [L, S], final losses [L, S]) -> TaskLosses."""
        initial, final = (np.asarray(a, np.float64) for a in outcome)
        with np.errstate(invalid="ignore", over="ignore"):
            per_lr = final.mean(axis=1)
        per_lr[~np.isfinite(per_lr)] = np.nan
        if np.all(np.isnan(per_lr)):
            return TaskLosses(float(initial[0].mean()), np.nan, np.nan)
        best = int(np.nanargmin(per_lr))
        return TaskLosses(float(initial[0].mean()), float(np.nanmin(per_lr)), self.lr_grid[best])

    def _check_adam(self, reference: list[TaskLosses]) -> None:
        stuck = [name for name, r in zip(self.task_names, reference) if not r.loss < r.initial]
        if stuck:
            raise OptionError(f"Adam does not reduce the loss of {', '.join(stuck)} in {self.steps} steps; raise steps")

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        return [self._evaluate(row) for row in program_rows(self.interpreter.lower(programs))]

    def _evaluate(self, program) -> Evaluation:
        losses, scores = self.normalizer.score(program)
        failed = [name for name, task in zip(self.task_names, losses) if np.isnan(task.loss)]
        if failed:
            return Evaluation.failure(f"non-finite loss at every learning rate on {', '.join(failed)}")
        metrics: dict[str, float] = {}
        for name, task, score in zip(self.task_names, losses, scores):
            metrics[f"loss/{name}"] = task.loss
            metrics[f"score/{name}"] = float(score)
            metrics[f"lr/{name}"] = task.lr
        return Evaluation(float(np.mean(np.clip(scores, *SCORE_RANGE))), metrics)


def relative_score(losses: TaskLosses, adam: TaskLosses) -> float:
    """log(L0 / floor(loss)) / log(L0 / floor(loss_adam)), with L0 Adam's loss at initialisation
    (the same initialisation as every program's)."""
    floor = LOSS_FLOOR * adam.initial
    return float(np.log(adam.initial / max(losses.loss, floor)) / np.log(adam.initial / max(adam.loss, floor)))
