"""The `tabular` evaluator of `nas-cells`: a cell's results looked up in a NAS-Bench-101 data file.

As the benchmark's `query`, an evaluation returns one of the cell's training runs (three per epoch
budget) at random: fitness its final validation accuracy, metrics its test accuracy, the parameter
count and the simulated training seconds it would have cost (`training_seconds`, what a run budgeted
in training time, as the benchmark's colab is, adds up). Which run is drawn depends only on the seed,
the cell and how many times this evaluator was asked for it, so a serial run is reproducible and the
same cell asked twice may get another run, as in the benchmark. `repeat="mean"` scores the mean of
the runs instead (BANANAS' choice: a noise-free fitness). The means of validation and test accuracy
are always reported, for regret curves. A cell absent from the file is a failed evaluation saying so
(the real file holds every valid cell, so only a partial file lacks some).
"""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np

from evolve.errors import EvolveError
from evolve.program import Program
from evolve.space import Evaluation, Evaluator

from evolve.search_spaces import nas_cells, nasbench_file


class TabularEvaluator(Evaluator):
    def __init__(self, data: str, epochs: int = 108, repeat: str = "sample", seed: int = 0, check_crc: bool = True):
        self.table = nasbench_file.read_table(data, epochs, check_crc)
        self.repeat = repeat
        self.seed = seed
        self.queries: collections.Counter[str] = collections.Counter()

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        return [self._query(program) for program in programs]

    def _query(self, program: Program) -> Evaluation:
        try:
            module_hash = nas_cells.module_hash(program)
        except (ValueError, EvolveError) as e:
            return Evaluation.failure(f"not a NAS-Bench-101 cell: {e}")
        row = self.table.index.get(module_hash)
        if row is None:
            # the hash goes to the metrics, so that a run's failures group under one reason
            return Evaluation.failure(f"cell not in {self.table.path} (at {self.table.epochs} epochs)", module_hash=module_hash)
        validation = self.table.validation_accuracy[row]
        test = self.table.test_accuracy[row]
        seconds = self.table.training_time[row]
        runs = np.flatnonzero(~np.isnan(validation))
        means = {"validation_accuracy_mean": float(validation[runs].mean()), "test_accuracy_mean": float(test[runs].mean())}
        if self.repeat == "mean":
            chosen = {"validation_accuracy": means["validation_accuracy_mean"], "test_accuracy": means["test_accuracy_mean"],
                      "training_seconds": float(seconds[runs].mean()), "repeat": -1}
        else:
            asked = self.queries[module_hash]
            self.queries[module_hash] += 1
            rng = np.random.default_rng([self.seed, int(module_hash[:16], 16), int(module_hash[16:], 16), asked])
            k = int(runs[rng.integers(len(runs))])
            chosen = {"validation_accuracy": float(validation[k]), "test_accuracy": float(test[k]),
                      "training_seconds": float(seconds[k]), "repeat": k}
        metrics = {**chosen, **means, "trainable_parameters": int(self.table.trainable_parameters[row]), "module_hash": module_hash}
        return Evaluation(chosen["validation_accuracy"], metrics)
