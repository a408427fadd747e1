"""A stored run as series over its course, for plots: best fitness against evaluations spent and
against wall-clock seconds, and for guided runs what the predictor did as the run went on.

Everything is read from the store alone (the individuals, their proposal records and the times they
were recorded): no space, evaluator or predictor is built.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from evolve.population import Individual
from evolve.store import RunRecord, Store

#: a child within this much of its parent's fitness is a tie: the predictor is not judged on it
TIE = 1e-6


@dataclasses.dataclass(frozen=True)
class Curve:
    """Best fitness so far (y) after x evaluations spent, or x seconds since the run was created."""

    x: tuple[float, ...]
    y: tuple[float, ...]

    def at(self, grid: Sequence[float]) -> np.ndarray:
        """The best so far at each grid value (-inf before the first point; the last value held)."""
        if not self.x:
            return np.full(len(grid), -np.inf)
        index = np.searchsorted(np.asarray(self.x), np.asarray(grid, float), side="right") - 1
        values = np.asarray(self.y)[np.clip(index, 0, None)]
        return np.where(index >= 0, values, -np.inf)


def best_curves(store: Store, run: RunRecord) -> tuple[Curve, Curve]:
    """(best against evaluations spent, best against wall-clock seconds). Answers from the duplicate
    cache spend no evaluation; seconds count from the run's creation (time stopped included, for a
    resumed run)."""
    rows = store.db.execute(
        "SELECT fitness, cached, recorded FROM individuals WHERE run_id = ? ORDER BY id", (run.id,)
    ).fetchall()
    best, spent = -math.inf, 0
    by_evaluations: list[tuple[float, float]] = []
    by_seconds: list[tuple[float, float]] = []
    for fitness, cached, recorded in rows:
        best = max(best, -math.inf if fitness is None else fitness)
        by_seconds.append((recorded - run.created, best))
        if not cached:
            spent += 1
            by_evaluations.append((spent, best))
    return _curve(by_evaluations), _curve(by_seconds)


def _curve(points: list[tuple[float, float]]) -> Curve:
    return Curve(tuple(p[0] for p in points), tuple(p[1] for p in points))


@dataclasses.dataclass(frozen=True)
class GuidedSeries:
    """What a predictor-guided strategy did, over the run's evaluations (x: evaluations spent).

    accuracy: the predictor's call on child vs parent judged right (P(child > parent) > 0.5 exactly
    when the child is fitter), over a sliding window of calls; near-ties are not judged.
    acceptance: the share of guided proposals the predictor accepted (strategies that accept: PAM-RT),
    over a sliding window; empty where the strategy records no acceptance.
    tries: children tried per evaluated child, over a sliding window.
    predictor_seconds / evaluation_seconds: cumulative seconds in the predictor (inference and
    training) and in evaluations (fingerprints for the duplicate cache included).
    seconds_by_part: the strategy's seconds in all, by what they were spent on (inference, training,
    and where recorded: training the proposals waited for, mutation chains, novelty checks).
    """

    window: int
    guided: int
    accuracy: tuple[tuple[float, float], ...]
    overall_accuracy: float | None
    acceptance: tuple[tuple[float, float], ...]
    overall_acceptance: float | None
    tries: tuple[tuple[float, float], ...]
    mean_tries: float
    predictor_seconds: tuple[tuple[float, float], ...]
    evaluation_seconds: tuple[tuple[float, float], ...]
    seconds_by_part: dict[str, float]


def guided_series(individuals: Sequence[Individual], window: int | None = None) -> GuidedSeries | None:
    """The predictor's record over a guided run, or None for a run no predictor guided."""
    fitness = {ind.id: max(ind.fitness, -1e30) for ind in individuals}
    guided = [ind for ind in individuals if "predicted" in ind.proposal and not ind.cached]
    if not guided:
        return None
    window = window or max(10, min(200, len(guided) // 8))
    calls, accepted, tries = [], [], []
    cumulative_predictor, cumulative_evaluation = [], []
    inference = evaluation = training = waited = 0.0
    parts = {"mutation chains": 0.0, "novelty checks": 0.0}
    spent = 0
    for ind in individuals:
        info = ind.proposal
        inference += float(info.get("predictor_seconds", 0.0))
        training = max(training, float(info.get("train_seconds", 0.0)))  # recorded as the total so far
        waited = max(waited, float(info.get("train_wait_seconds", 0.0)))
        parts["mutation chains"] += float(info.get("mutation_seconds", 0.0))
        parts["novelty checks"] += float(info.get("novelty_seconds", 0.0))
        evaluation += ind.seconds + float(info.get("fingerprint_seconds", 0.0))
        if ind.cached:
            continue
        spent += 1
        cumulative_predictor.append((spent, inference + training))
        cumulative_evaluation.append((spent, evaluation))
        if "predicted" not in info:
            continue
        tries.append((spent, float(info.get("tries", 1))))
        if "accepted" in info:
            accepted.append((spent, 1.0 if info["accepted"] else 0.0))
        if ind.parent in fitness and abs(gap := fitness[ind.id] - fitness[ind.parent]) > TIE:
            calls.append((spent, 1.0 if (info["predicted"] > 0.5) == (gap > 0) else 0.0))
    return GuidedSeries(
        window=window,
        guided=len(guided),
        accuracy=_sliding(calls, window),
        overall_accuracy=_mean(calls),
        acceptance=_sliding(accepted, window),
        overall_acceptance=_mean(accepted),
        tries=_sliding(tries, window),
        mean_tries=_mean(tries) or 0.0,
        predictor_seconds=tuple(cumulative_predictor),
        evaluation_seconds=tuple(cumulative_evaluation),
        seconds_by_part={"predictor inference": inference, "predictor training": training,
                         **({"training the proposals waited for": waited} if waited else {}),
                         **{name: value for name, value in parts.items() if value}},
    )


def _sliding(points: list[tuple[float, float]], window: int) -> tuple[tuple[float, float], ...]:
    """The mean of the last `window` values at each point (fewer at the start)."""
    if not points:
        return ()
    values = np.cumsum([0.0] + [v for _, v in points])
    out = []
    for k, (x, _) in enumerate(points, start=1):
        start = max(0, k - window)
        out.append((x, float((values[k] - values[start]) / (k - start))))
    return tuple(out)


def _mean(points: list[tuple[float, float]]) -> float | None:
    return sum(v for _, v in points) / len(points) if points else None
