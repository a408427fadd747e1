"""What the predictor-guided strategies (PAM-RT, predictor filter) share: a predictor they cannot
run without, plain regularized evolution while the predictor warms up, the record of what the
predictor was asked and how long it took (Proposal.info: tries, predicted, predictor_seconds,
train_seconds and, where the predictor and strategy measure them, train_wait_seconds,
mutation_seconds and novelty_seconds), and the behaviour fingerprints of everything already
proposed (NoveltyMemory, which novelty-filtered regularized evolution shares too).

A child that behaves like a program already proposed would be answered by the duplicate cache and
teach the search nothing, yet it looks just like its parent to the predictor, which then rates it
near 0.5 and picks it over real changes. So guided strategies skip children with known fingerprints.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from evolve.population import AgingPopulation, Individual
from evolve.predictor import Predictor
from evolve.program import Program
from evolve.strategy import Proposal, Strategy
from evolve.plugins.selection_options import check_selection


class NoveltyMemory(Strategy):
    """The behaviour fingerprints of every program proposed so far, and which children repeat one."""

    def __init__(self, space):
        self.space = space
        self.known: set[str] = set()

    def recover(self, history: Sequence[Individual], pending: Sequence[Program]) -> None:
        """Every recorded individual and every pending program was once a proposal: their
        fingerprints are what `remember` would have noted."""
        super().recover(history, pending)
        programs = [ind.program for ind in history] + list(pending)
        for start in range(0, len(programs), 1024):
            self.known.update(self.space.fingerprints(programs[start : start + 1024]))

    def novel(self, programs: Sequence[Program]) -> tuple[np.ndarray, list[str]]:
        """Which programs behave unlike anything proposed so far, and their fingerprints."""
        fingerprints = self.space.fingerprints(programs)
        return np.array([fp not in self.known for fp in fingerprints], bool), fingerprints

    def remember(self, proposals: list[Proposal], fingerprints: Sequence[str] | None = None) -> list[Proposal]:
        """Note the proposals' fingerprints (computed unless given), so later children that repeat
        them are skipped."""
        if fingerprints is None:
            fingerprints = self.space.fingerprints([p.program for p in proposals])
        self.known.update(fingerprints)
        return proposals


class GuidedStrategy(NoveltyMemory):
    #: the predictor the engine builds when the run names none
    default_predictor = "binary"

    def __init__(self, space, predictor: Predictor | None, population_size: int, tournament_size: int):
        if predictor is None:
            raise ValueError("this strategy needs a predictor: pass --predictor binary (or regression, oracle)")
        check_selection(population_size, tournament_size)
        super().__init__(space)
        self.predictor = predictor
        self.population_size = population_size
        self.tournament_size = tournament_size

    def unguided(self, population: AgingPopulation, rng: np.random.Generator) -> Proposal:
        """One regularized-evolution step, for while the predictor is not ready."""
        parent = population.tournament(self.tournament_size, rng)
        return Proposal(self.space.mutate(parent.program, rng), parent.id, {"tries": 1, "guided": False})

    def compare(self, a: Sequence[Program], b: Sequence[Program]) -> tuple[np.ndarray, float]:
        """The predictor's P(a > b) and the seconds it took."""
        start = time.perf_counter()
        p = self.predictor.compare(a, b)
        return p, time.perf_counter() - start

    def _training_seconds(self) -> dict:
        """The predictor's training seconds so far, and those the proposals waited for (less, when
        it trains in the background)."""
        metrics = self.predictor.metrics()
        out = {"train_seconds": float(metrics.get("train_seconds", 0.0))}
        if "train_wait_seconds" in metrics:
            out["train_wait_seconds"] = float(metrics["train_wait_seconds"])
        return out

    def info(self, tries: int, predicted: float, seconds: float, **extra) -> dict:
        return {
            "tries": tries,
            "guided": True,
            "predicted": float(predicted),
            "predictor_seconds": float(seconds),
            **self._training_seconds(),
            **extra,
        }
