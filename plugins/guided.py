"""What the predictor-guided strategies (PAM-RT, predictor filter) share: a predictor they cannot
run without, plain regularized evolution while the predictor warms up, the record of what the
predictor was asked and how long it took (Proposal.info: tries, predicted, predictor_seconds,
train_seconds and, where the predictor and strategy measure them, train_wait_seconds,
mutation_seconds and novelty_seconds), and the behaviour fingerprints of everything already
proposed (NoveltyMemory, which novelty-filtered regularized evolution shares too).

A child that behaves like a program already proposed would be answered by the duplicate cache and
teach the search nothing, yet it looks just like its parent to the predictor, which then rates it
near 0.5 and picks it over real changes. So guided strategies skip children with known fingerprints.

Guidance has a price in seconds, which evolve/guidance_cost.py accounts for: `max_predictor_share`
bounds it as a fraction of the evaluation seconds. Over the bound, proposals fall back to plain
regularized evolution and the predictor's training calls are skipped, until evaluations have paid
for the time spent; so on a space whose evaluations cost far less than the predictor (symbolic
regression: 0.5 ms against 40 ms) a run degrades to regularized evolution plus the warm-up, instead
of running tens of times slower. The default is no bound: the decision depends on wall-clock, and a
run with one worker and a seed must stay reproducible and resume exactly (tests/test_resume.py),
and the benchmarks that count evaluations must guide throughout. Spaces whose evaluations cost more
than the predictor (optimizers: 130 ms and more against about 40 ms) stay under any bound of 1 or
more; a bound of 1 keeps a serial run within twice the wall-clock of its unguided evaluations. The
decisions are recorded with each proposal (`over_share`, `predictor_share`), so a resumed run
replays them, and the account is rebuilt from the history.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Sequence

import numpy as np

from evolve.guidance_cost import GuidanceBudget, evaluation_seconds, proposal_guidance_seconds
from evolve.population import AgingPopulation, Individual
from evolve.predictor import Predictor, checked_comparison
from evolve.program import Program
from evolve.strategy import Proposal, Strategy, initial_proposals
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

    def __init__(self, space, predictor: Predictor | None, population_size: int, tournament_size: int,
                 max_predictor_share: float | None = None):
        """predictor: what compares a child with its parent (`evolve plugins` lists them: binary, the
        paper's discriminator; regression; oracle, for ablations).
        population_size: individuals alive at once; each new one retires the oldest (aging).
        tournament_size: individuals drawn at random for each tournament; the fittest is the parent.
        max_predictor_share: the predictor's seconds (training and inference) as a fraction of the
        evaluation seconds above which proposals fall back to plain regularized evolution until
        evaluations have paid for it (null: no bound, the default; see evolve/plugins/guided.py)."""
        if predictor is None:
            raise ValueError("this strategy needs a predictor: pass --predictor binary (or regression, oracle)")
        check_selection(population_size, tournament_size)
        if max_predictor_share is not None and not 0.0 < max_predictor_share < math.inf:
            raise ValueError(f"max_predictor_share must be a positive number (or null: no bound), got {max_predictor_share}")
        super().__init__(space)
        self.predictor = predictor
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.budget = GuidanceBudget(max_predictor_share)

    def propose(self, population: AgingPopulation, n: int, rng: np.random.Generator) -> list[Proposal]:
        """Initial programs, then regularized evolution until the predictor is ready, then guided
        proposals (`guided_proposals`), timed, except while the predictor's share is over its bound."""
        if population.initializing:
            return self.remember(initial_proposals(self.space, population, n, rng))
        if not self.predictor.ready:
            return self.remember([self.unguided(population, rng) for _ in range(n)])
        decision = {}
        if self.budget.bound is not None:
            waited = self._train_wait()
            share = self.budget.share(waited)
            decision["predictor_share"] = share if math.isfinite(share) else None  # as it stood when deciding
            if share > self.budget.bound:
                return self.remember([self.unguided(population, rng, over_share=True, train_wait_seconds=waited,
                                                    **decision) for _ in range(n)])
        start = time.perf_counter()
        proposals, fingerprints = self.guided_proposals(population, n, rng)
        spent = time.perf_counter() - start
        self.budget.guidance += spent
        decision["guidance_seconds"] = spent / len(proposals)
        return self.remember([dataclasses.replace(p, info={**p.info, **decision}) for p in proposals], fingerprints)

    def guided_proposals(self, population: AgingPopulation, n: int,
                         rng: np.random.Generator) -> tuple[list[Proposal], list[str]]:
        """`n` proposals made with the predictor, and their fingerprints."""
        raise NotImplementedError

    def observe(self, individuals: Sequence[Individual]) -> None:
        """Count the evaluation seconds; over the share bound, the predictor skips its training."""
        self.budget.evaluation += evaluation_seconds(individuals)
        if self.budget.bound is not None:
            self.predictor.hold_training(self.budget.over(self._train_wait()))

    def recover(self, history: Sequence[Individual], pending: Sequence[Program]) -> None:
        """The account as the history recorded it (observe adds the evaluation seconds)."""
        self.budget.guidance = sum(proposal_guidance_seconds(ind.proposal) for ind in history)
        super().recover(history, pending)

    def _train_wait(self) -> float:
        return float(self.predictor.metrics().get("train_wait_seconds", 0.0))

    def unguided(self, population: AgingPopulation, rng: np.random.Generator, **extra) -> Proposal:
        """One regularized-evolution step, for while the predictor is not ready (or over its share)."""
        parent = population.tournament(self.tournament_size, rng)
        return Proposal(self.space.mutate(parent.program, rng), parent.id, {"tries": 1, "guided": False, **extra})

    def compare(self, a: Sequence[Program], b: Sequence[Program]) -> tuple[np.ndarray, float]:
        """The predictor's P(a > b) and the seconds it took."""
        start = time.perf_counter()
        p = checked_comparison(self.predictor, self.predictor.compare(a, b), len(a))
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
