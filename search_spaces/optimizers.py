"""ML optimizers: search for elementwise update rules like Adam and Lion (issue 5).

A program maps (g, p, m, v, t) to the direction u and the new state (m, v); training does
p <- p - lr * u (see optimizer_programs). Each candidate trains every task of a suite
(optimizer_tasks) for `steps` full-batch steps, at every learning rate of `lr_grid` and for `seeds`
initialisations, with the shared harness compiled once per process; its fitness is relative to Adam
(optimizer_evaluator says exactly how).

This module is the space's grammar, which `evolve show`, `top`, `export` and a Ray driver build: it
imports no JAX. Fingerprints compile a short probe rollout on their first call; the evaluator (the
tasks, the compiled training, Adam's reference run) is built only where evaluations run.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np

from evolve import hookimpl
from evolve.errors import OptionError
from evolve.ops import Vocabulary
from evolve.program import Program
from evolve.space import Evaluator, SearchSpace

from evolve.search_spaces import optimizer_export, optimizer_programs

DEFAULT_LR_GRID = (1e-3, 1e-2, 1e-1, 1.0)
SEED_CHOICES = {"all": ("sgd", "momentum", "adam", "lion"), "sgd": ("sgd",), "none": ()}
#: the task suites of optimizer_tasks.SUITES, named here so the grammar can check the option without JAX
SUITES = ("train", "heldout")
#: The most training steps a candidate may take per task (steps x seeds x learning rates; 800 at the
#: defaults). The evaluator first trains Adam as the reference, in one compiled call that Ctrl-C cannot
#: stop: at 8,000 that takes about 12 s on a CPU, so at this bound about a minute.
MAX_TRAINING_STEPS = 50_000
#: The interpreter steps through every node slot at every training step.
MAX_NODES = 400


class Optimizers(SearchSpace):
    export_formats = ("optax", "text", "json")
    #: 2% of Adam's score. Seeded with SGD, a guided search trained on every gap climbed for hundreds
    #: of evaluations in steps of ~0.005 (constants nudged); with gaps under 0.02 left as ties, PAM-RT
    #: reached regularized evolution's median final fitness 1.98x sooner instead of 1.08x (2.71x
    #: instead of 1.18x with fallback=first-parent; 10 seeds each,
    #: benchmarks/results/speedup_optimizers_1000_tie.json against speedup_optimizers_1000.json)
    fitness_resolution = 0.02

    def __init__(
        self,
        suite: str = "train",
        steps: int = 100,
        seeds: int = 2,
        lr_grid: list[float] | tuple[float, ...] = DEFAULT_LR_GRID,
        seed_with: str = "all",
        max_nodes: int = 40,
    ):
        """suite: "train" (what a search optimizes) or "heldout" (generalization check).
        steps: training steps per task; seeds: initialisations per task and learning rate.
        lr_grid: the learning rates tried; each task takes the program's best.
        seed_with: the seed programs, "all" (SGD, momentum, Adam, Lion), "sgd" or "none".
        max_nodes: the most nodes an update rule may have, its inputs included (from Adam's size to 400);
        mutations that would grow a program past it are not made."""
        if suite not in SUITES:
            raise OptionError(f"unknown task suite {suite!r}; known: {', '.join(SUITES)}")
        if not _is_int(steps) or not _is_int(seeds) or steps < 1 or seeds < 1:
            raise OptionError(f"steps and seeds must be integers of at least 1, got steps={steps!r}, seeds={seeds!r}")
        if isinstance(lr_grid, (list, tuple)) and steps * seeds * max(len(lr_grid), 1) > MAX_TRAINING_STEPS:
            raise OptionError(f"steps x seeds x learning rates, the training steps of each candidate per task, must be at"
                              f" most {MAX_TRAINING_STEPS}, got {steps} x {seeds} x {len(lr_grid)}")
        if seed_with not in SEED_CHOICES:
            raise OptionError(f"seed_with must be one of {', '.join(SEED_CHOICES)}, got {seed_with!r}")
        ok = isinstance(lr_grid, (list, tuple)) and all(isinstance(lr, (int, float)) and not isinstance(lr, bool) for lr in lr_grid)
        lrs = [float(lr) for lr in lr_grid] if ok else []
        if not lrs or not all(math.isfinite(lr) and lr > 0 for lr in lrs):
            raise OptionError(f"lr_grid must be a non-empty list of positive learning rates, got {lr_grid!r}")
        adam_size = len(optimizer_programs.adam().nodes)  # the evaluator's reference must fit
        if not _is_int(max_nodes) or not adam_size <= max_nodes <= MAX_NODES:
            raise OptionError(f"max_nodes must be an integer from {adam_size} (Adam's size) to {MAX_NODES}, got {max_nodes!r}")
        self.suite = suite
        self.steps = steps
        self.n_seeds = seeds
        self.lr_grid = tuple(lrs)
        self.seed_with = seed_with
        self._vocab = optimizer_programs.vocabulary(max_nodes)

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    def build_evaluator(self) -> Evaluator:
        """The tasks, the harness compiled once and Adam's reference run (about 20 s at the defaults)."""
        from evolve.search_spaces.optimizer_evaluator import OptimizerEvaluator

        return OptimizerEvaluator(self.suite, self.steps, self.lr_grid, self.n_seeds, self._vocab)

    # ------------------------------------------------------------------ programs
    def seed_programs(self, rng: np.random.Generator) -> list[Program]:
        return [optimizer_programs.SEEDS[name]() for name in SEED_CHOICES[self.seed_with]]

    def random_program(self, rng: np.random.Generator) -> Program:
        """With seeds, a seed mutated 1-3 times: almost every random DAG fails to train anything, so a
        population filled with them would spend the budget on failures. Without seeds, a random DAG."""
        seeds = self.seed_programs(rng)
        if not seeds:
            return super().random_program(rng)
        program = seeds[int(rng.integers(len(seeds)))]
        for _ in range(int(rng.integers(1, 4))):
            program = self.mutate(program, rng)
        return program

    # ------------------------------------------------------------------ fingerprints
    @functools.cached_property
    def _probe(self):
        from evolve.search_spaces.optimizer_training import Probe

        return Probe(self._vocab)

    def fingerprints(self, programs: Sequence[Program]) -> list[str]:
        """Directions of a short probe rollout (optimizer_training.Probe), to 5 significant digits, hashed."""
        return self._probe.fingerprints(programs)

    def fingerprint(self, program: Program) -> str:
        return self.fingerprints([program])[0]

    # ------------------------------------------------------------------ export
    def describe(self, program: Program) -> str:
        return optimizer_export.update_rule_text(program)

    def to_optax(self, program: Program, learning_rate: float):
        """The live optax.GradientTransformation of `program`."""
        from evolve.search_spaces.optimizer_optax import to_optax

        return to_optax(program, self._vocab, learning_rate)

    def export(self, program: Program, format: str) -> str:
        self.check_export_format(format)
        if format == "json":
            return program.to_json(indent=2)
        if format == "text":
            return self.describe(program) + "\n"
        return optimizer_export.to_source(program)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@hookimpl
def evolve_search_spaces():
    return {"optimizers": Optimizers}
