"""What guidance costs against what it saves, for a run that consults a predictor.

Cost: the seconds a guided strategy spends making proposals beyond what plain regularized evolution
spends (every guided proposal records its `guidance_seconds`: tournaments, mutation chains, novelty
fingerprints, predictor inference), plus the seconds proposals waited for training (the predictor's
`train_wait_seconds`, recorded with each guided proposal; zero when it trains in the background).
Against it: the evaluation seconds (workers' evaluation time plus the behaviour fingerprints the
engine computes for the duplicate cache), the same sum `evolve show` reports. Their ratio is the
predictor's *share*: in a serial run, a guided run takes (1 + share) times the wall-clock of the same
number of unguided evaluations.

Saving, estimated from the run's own records: guided children beat their parent at a rate g,
unguided children of the same run (the warm-up before the predictor is ready, and proposals that fell
back to regularized evolution when the share was over its bound) at a rate u. Unguided search needs
g/u evaluations to make the improvements one guided evaluation makes, so G guided evaluations saved
about G (g/u - 1). That time would instead have bought cost / (evaluation seconds per evaluation)
evaluations; guidance pays for itself when it saved more than that. The estimate counts improvements
on the parent, not how large they are; warm-up children improve more easily than later ones (their
parents are worse), so u is high and the saving, if anything, underestimated. With fewer than
`MIN_BASELINE` unguided children the run cannot say what a guided child is worth, and the line
gives the break-even instead.

`GuidanceBudget` is the running account a strategy keeps to bound its share (`max_predictor_share`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable, Mapping, Sequence

from evolve.population import Individual

#: unguided children needed before their rate of beating the parent is used as the baseline
MIN_BASELINE = 30
#: fitness differences at most this large are ties, not improvements
TIE = 1e-6


def proposal_guidance_seconds(info: Mapping[str, Any]) -> float:
    """The proposal-path seconds one guided proposal cost (training waits are counted separately)."""
    if "guidance_seconds" in info:
        return float(info["guidance_seconds"])
    keys = ("predictor_seconds", "mutation_seconds", "novelty_seconds")  # records made before guidance_seconds
    return float(sum(info.get(k, 0.0) for k in keys)) if info.get("guided") else 0.0


def evaluation_seconds(individuals: Iterable[Individual]) -> float:
    """Evaluation seconds, and the engine's fingerprint seconds, of the individuals."""
    return sum(ind.seconds + float(ind.proposal.get("fingerprint_seconds", 0.0)) for ind in individuals)


@dataclasses.dataclass
class GuidanceBudget:
    """The running account of a guided strategy: guidance seconds spent on the proposal path against
    evaluation seconds observed. `bound` (None: no bound) is the share above which it stops guiding."""

    bound: float | None = None
    guidance: float = 0.0
    evaluation: float = 0.0

    def share(self, train_wait: float) -> float:
        spent = self.guidance + train_wait
        return spent / self.evaluation if self.evaluation > 0 else (math.inf if spent > 0 else 0.0)

    def over(self, train_wait: float) -> bool:
        return self.bound is not None and self.share(train_wait) > self.bound


def summary(individuals: Sequence[Individual]) -> dict[str, Any] | None:
    """The cost and the estimated saving of guidance in a run (see the module docstring); None for a
    run that never consulted a predictor (no guided proposal, none that fell back over the bound)."""
    guided = [ind for ind in individuals if ind.proposal.get("guided")]
    consulted = [ind for ind in individuals if ind.proposal.get("guided") or ind.proposal.get("over_share")]
    if not consulted:
        return None
    fitness = {ind.id: max(ind.fitness, -1e30) for ind in individuals}
    evaluated = [ind for ind in individuals if not ind.cached]
    spent_on_evaluations = evaluation_seconds(individuals)
    train_wait = max(float(ind.proposal.get("train_wait_seconds", 0.0)) for ind in consulted)
    cost = sum(proposal_guidance_seconds(ind.proposal) for ind in individuals) + train_wait
    per_evaluation = spent_on_evaluations / len(evaluated) if evaluated else math.nan

    def improvement_rate(group: list[Individual]) -> tuple[float, int]:
        children = [ind for ind in group if not ind.cached and ind.parent in fitness]
        better = sum(max(ind.fitness, -1e30) > fitness[ind.parent] + TIE for ind in children)
        return (better / len(children) if children else math.nan), len(children)

    g, n_guided = improvement_rate(guided)
    unguided = [ind for ind in individuals if not ind.proposal.get("guided") and not ind.proposal.get("initial")
                and ind.parent is not None]
    u, n_unguided = improvement_rate(unguided)
    out = {
        "guidance_seconds": cost,
        "train_wait_seconds": train_wait,
        "evaluation_seconds": spent_on_evaluations,
        "share": cost / spent_on_evaluations if spent_on_evaluations > 0 else math.inf,
        "guided_evaluations": n_guided,
        "guided_improvement_rate": g,
        "unguided_evaluations": n_unguided,
        "unguided_improvement_rate": u,
        "fallbacks": sum(bool(ind.proposal.get("over_share")) for ind in individuals),
        # a guided evaluation costs its evaluation plus this many evaluations' time
        "evaluations_per_guided_cost": (cost / n_guided) / per_evaluation if n_guided and per_evaluation > 0 else math.inf,
        "evaluations_bought": cost / per_evaluation if per_evaluation > 0 else math.inf,
        "evaluations_saved": None,
    }
    if n_unguided >= MIN_BASELINE and u > 0 and n_guided:
        out["evaluations_saved"] = n_guided * (g / u - 1.0)
    return out


def verdict_line(s: Mapping[str, Any] | None) -> str | None:
    """One line from `summary`: is guidance paying for itself on this run? None without a summary.
    (A run bounded by `max_predictor_share` from its warm-up on guides nothing: the line says so.)"""
    if s is None:
        return None
    cost = (f"guidance: {s['guidance_seconds']:.2f} s on the proposal path, {s['share']:.3g}x the evaluation time"
            f" (the time of {s['evaluations_bought']:.0f} evaluations)")
    if s["fallbacks"]:
        cost += f"; {s['fallbacks']} proposals fell back to regularized evolution over the share bound"
    if not s["guided_evaluations"]:
        return f"{cost}; no guided child was evaluated: the run was regularized evolution after the predictor's warm-up"
    if s["evaluations_saved"] is None:
        worth = 1.0 + s["evaluations_per_guided_cost"]
        return (f"{cost}; too few unguided children ({s['unguided_evaluations']}) to measure what a guided one is worth:"
                f" it pays for itself only if each guided child is worth more than {worth:.3g} unguided ones")
    saved, bought = s["evaluations_saved"], s["evaluations_bought"]
    verdict = "paying for itself" if saved > bought else "NOT paying for itself (bound it: --strategy-opt max_predictor_share=1)"
    return (f"{cost}; guided children beat their parent {s['guided_improvement_rate']:.1%} of the time, unguided"
            f" {s['unguided_improvement_rate']:.1%} ({s['unguided_evaluations']}): about {max(saved, 0.0):.0f}"
            f" evaluations saved: {verdict}")
