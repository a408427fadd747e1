"""The oracle predictor, for benchmarks only: it answers from true fitness, wrong with probability
`error_rate`, to study how a predictor's accuracy drives the speed-up.

It evaluates the programs it is asked about with the space itself. Those are hidden evaluations that
no budget counts, so a search guided by it is not a fair competitor; it exists to draw the
accuracy -> speed-up curve."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from evolve import hookimpl
from evolve.discriminator.replay import WORST
from evolve.population import Individual
from evolve.predictor import Predictor
from evolve.program import Program


class OraclePredictor(Predictor):
    def __init__(self, space, error_rate: float = 0.0, seed: int = 0):
        """error_rate: the fraction of comparisons answered wrongly at random (0: a perfect oracle).
        seed: seeds which comparisons are flipped."""
        if not 0.0 <= error_rate <= 1.0:
            raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
        self.space = space
        self.error_rate = error_rate
        self.rng = np.random.default_rng(seed)
        self.fitness: dict[str, float] = {}
        self.hidden_evaluations = 0

    def observe(self, individuals: Sequence[Individual]) -> None:
        for ind in individuals:
            self.fitness[ind.program.digest] = ind.fitness

    def compare(self, a: Sequence[Program], b: Sequence[Program]) -> np.ndarray:
        unknown = list({p.digest: p for p in (*a, *b) if p.digest not in self.fitness}.values())
        if unknown:
            for p, e in zip(unknown, self.space.evaluate(unknown)):
                self.fitness[p.digest] = e.fitness
            self.hidden_evaluations += len(unknown)
        fa = np.array([max(self.fitness[p.digest], WORST) for p in a])
        fb = np.array([max(self.fitness[p.digest], WORST) for p in b])
        truth = np.where(fa > fb, 1.0, np.where(fa < fb, 0.0, 0.5))
        flip = self.rng.random(len(a)) < self.error_rate
        return np.where(flip, 1.0 - truth, truth)

    def metrics(self) -> dict:
        return {"hidden_evaluations": self.hidden_evaluations}


@hookimpl
def evolve_predictors():
    return {"oracle": OraclePredictor}
