"""Text reports of a stored run for the terminal: summary, best-so-far curve, top programs."""

from __future__ import annotations

import collections
import datetime
import logging
import math

from evolve.population import Individual
from evolve.store import RunRecord, Store

log = logging.getLogger(__name__)


def describe(space, program) -> str:
    """`space.describe(program)`, or a short note when the space's describe raises (a report of a
    run never fails because of one program)."""
    try:
        return str(space.describe(program))
    except Exception as e:  # noqa: BLE001 - plugin code
        log.debug("describe failed", exc_info=True)
        return f"(describe failed: {type(e).__name__}: {e}) {program!r}"


def best_so_far(history: list[tuple[int, float, bool]]) -> list[tuple[int, float]]:
    """(evaluations spent, best fitness so far) after each real evaluation."""
    points, best, spent = [], -math.inf, 0
    for _, fitness, cached in history:
        best = max(best, fitness)
        if not cached:
            spent += 1
            points.append((spent, best))
    return points


def ascii_curve(points: list[tuple[int, float]], width: int = 60, height: int = 10) -> str:
    """A best-so-far curve drawn with characters; x = evaluations, y = fitness."""
    finite = [(x, y) for x, y in points if math.isfinite(y)]
    if not finite:
        return "(no successful evaluation yet)"
    xmax = finite[-1][0]
    ylo, yhi = finite[0][1], finite[-1][1]
    if yhi - ylo < 1e-12:
        ylo -= 0.5
        yhi += 0.5
    grid = [[" "] * width for _ in range(height)]
    for x, y in finite:
        col = min(width - 1, int((x - 1) / max(1, xmax) * width))
        row = height - 1 - min(height - 1, int((y - ylo) / (yhi - ylo) * (height - 1) + 0.5))
        grid[row][col] = "*"
    lines = []
    for r, cells in enumerate(grid):
        label = f"{yhi:>10.4g} |" if r == 0 else f"{ylo:>10.4g} |" if r == height - 1 else " " * 11 + "|"
        lines.append(label + "".join(cells))
    lines.append(" " * 11 + "+" + "-" * width)
    lines.append(" " * 12 + "1" + f"{xmax:>{width - 1}}" + "  evaluations")
    return "\n".join(lines)


def run_line(run: RunRecord, store: Store) -> str:
    cfg = run.config
    evaluated, cached = store.counts(run.id)
    best = store.top(run.id, 1)
    best_text = f"{best[0].fitness:.6g}" if best else "-"
    created = datetime.datetime.fromtimestamp(run.created).strftime("%Y-%m-%d %H:%M")
    problem = cfg.space_options.get("problem", "")
    return (
        f"{run.id:>4}  {created}  {cfg.space:<20} {str(problem):<12} {cfg.strategy:<22} "
        f"{evaluated:>7}/{cfg.budget:<7} {cached:>7}  {best_text:>10}  {run.state}"
    )


RUNS_HEADER = f"{'run':>4}  {'created':<16}  {'space':<20} {'problem':<12} {'strategy':<22} {'evaluated':>15} {'cached':>7}  {'best':>10}  status"


def top_table(store: Store, run: RunRecord, space, n: int) -> str:
    lines = [f"{'id':>7}  {'fitness':>10}  {'parent':>7}  program"]
    for ind in store.top(run.id, n):
        parent = "-" if ind.parent is None else str(ind.parent)
        solved = "  [solved]" if ind.evaluation.metrics.get("solved") else ""
        lines.append(f"{ind.id:>7}  {ind.fitness:>10.6g}  {parent:>7}  {describe(space, ind.program)}{solved}")
    return "\n".join(lines)


def predictor_lines(individuals: list[Individual], evaluation_seconds: float, tie: float = 1e-6) -> list[str]:
    """What the predictor did in a guided run: its online accuracy on child vs parent (judged before
    it trained on the pair; near-ties skipped), tries per evaluated child, and its seconds."""
    fitness = {ind.id: max(ind.fitness, -1e30) for ind in individuals}
    guided = [ind for ind in individuals if "predicted" in ind.proposal and ind.parent in fitness and not ind.cached]
    if not guided:
        return []
    calls = [
        (ind.proposal["predicted"] > 0.5) == (gap > 0)
        for ind in guided
        if abs(gap := max(ind.fitness, -1e30) - fitness[ind.parent]) > tie
    ]
    inference = sum(ind.proposal.get("predictor_seconds", 0.0) for ind in individuals)
    training = max(ind.proposal.get("train_seconds", 0.0) for ind in individuals)
    accuracy = "-" if not calls else f"{sum(calls) / len(calls):.1%} overall, {sum(calls[-500:]) / len(calls[-500:]):.1%} in the last {min(500, len(calls))}"
    ratio = f"; {(inference + training) / evaluation_seconds:.3g}x the evaluation time" if evaluation_seconds else ""
    return [
        f"predictor: online accuracy {accuracy} (child vs parent, {len(guided)} guided children)",
        f"predictor: {sum(ind.proposal['tries'] for ind in guided) / len(guided):.2f} tries per evaluated child",
        f"predictor time: {training:.2f} s training + {inference:.2f} s inference{ratio}",
    ]


def show(store: Store, run: RunRecord, space, top: int = 5) -> str:
    cfg = run.config
    evaluated, cached = store.counts(run.id)
    history = store.fitness_history(run.id)
    failed = sum(1 for _, f, c in history if not c and f == -math.inf)
    pending = len(store.pending(run.id))
    options = ", ".join(f"{k}={v}" for k, v in {**cfg.space_options, **cfg.strategy_options}.items())
    lines = [
        f"run {run.id}: {cfg.space} / {cfg.strategy}" + (f" + {cfg.predictor}" if cfg.predictor else "")
        + (f" ({options})" if options else ""),
        f"status: {run.state}; seed {cfg.seed}; "
        f"executor {cfg.executor} x{cfg.workers}",
        f"evaluations: {evaluated} of {cfg.budget}; failed {failed}; answered by the duplicate cache {cached}; "
        f"pending {pending}",
    ]
    individuals = store.individuals(run.id)
    probing = sum(ind.proposal.get("fingerprint_seconds", 0.0) for ind in individuals)
    seconds = sum(ind.seconds for ind in individuals) + probing if evaluated else 0.0
    if evaluated:
        lines.append(f"evaluation time: {seconds:.2f} s in all, {seconds / evaluated * 1e3:.3f} ms per evaluation "
                     f"({probing:.2f} s of it computing behaviour fingerprints for the duplicate cache)")
    reasons = collections.Counter(ind.evaluation.error for ind in individuals if not ind.cached and ind.evaluation.failed)
    if reasons:
        lines.append("failures by reason:")
        lines += [f"  {count:>7}  {reason}" for reason, count in reasons.most_common()]
    lines += predictor_lines(individuals, seconds)
    lines += ["", "best fitness so far:", ascii_curve(best_so_far(history)), "", "top programs:", top_table(store, run, space, top)]
    return "\n".join(lines)
