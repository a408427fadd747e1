"""Text reports of a stored run for the terminal: summary, best-so-far curve, top programs."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import inspect
import logging
import math

from evolve.guidance_cost import summary as guidance_summary, verdict_line
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


def readable(space, program) -> str:
    """`describe`, simplified where the space exports a sympy formula: the shorter of the formula as
    written and expanded (x1*(x1 + 1) - x1 reads x1**2; x1*(x1*(x1 + 1) + 1) stays as it is)."""
    text = describe(space, program)
    if "sympy" not in getattr(space, "export_formats", ()):
        return text
    try:
        import sympy

        names = {item.name: sympy.Symbol(item.name) for item in space.vocabulary.inputs}
        expanded = sympy.sstr(sympy.expand(sympy.parse_expr(space.export(program, "sympy"), local_dict=names)))
    except Exception:  # noqa: BLE001 - plugin code, or a formula sympy cannot read back: shown as written
        log.debug("simplifying failed", exc_info=True)
        return text
    return expanded if len(expanded) < len(text) else text


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


def space_default(space_class: type | None, option: str):
    """The default value of a space's option (its constructor's), or None when unknown."""
    if space_class is None:
        return None
    try:
        param = inspect.signature(space_class).parameters.get(option)
    except (TypeError, ValueError):
        return None
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def run_row(run: RunRecord, store: Store, space_class: type | None = None) -> dict:
    """One run as data (`evolve runs --json`); the problem is the space's default when the run gave
    none (`space_class`: the class the run's space name resolves to, if installed)."""
    cfg = run.config
    evaluated, cached = store.counts(run.id)
    best = store.top(run.id, 1)
    problem = cfg.space_options.get("problem", space_default(space_class, "problem"))
    return {
        "id": run.id,
        "created": datetime.datetime.fromtimestamp(run.created, datetime.timezone.utc).isoformat(timespec="seconds"),
        "space": cfg.space,
        "problem": problem,
        "strategy": cfg.strategy,
        "predictor": cfg.predictor,
        "evaluated": evaluated,
        "budget": cfg.budget,
        "cached": cached,
        "best": best[0].fitness if best else None,
        "status": run.state,
    }


def run_line(run: RunRecord, store: Store, space_class: type | None = None) -> str:
    row = run_row(run, store, space_class)
    best_text = "-" if row["best"] is None else f"{row['best']:.6g}"
    created = datetime.datetime.fromtimestamp(run.created).strftime("%Y-%m-%d %H:%M")
    problem = "" if row["problem"] is None else str(row["problem"])
    return (
        f"{run.id:>4}  {created}  {row['space']:<20} {problem:<12} {row['strategy']:<22} "
        f"{row['evaluated']:>7}/{row['budget']:<7} {row['cached']:>7}  {best_text:>10}  {row['status']}"
    )


RUNS_HEADER = f"{'run':>4}  {'created':<16}  {'space':<20} {'problem':<12} {'strategy':<22} {'evaluated':>15} {'cached':>7}  {'best':>10}  status"


def top_table(store: Store, run: RunRecord, space, n: int) -> str:
    lines = [f"{'id':>7}  {'fitness':>10}  {'parent':>7}  program"]
    for ind in store.top(run.id, n):
        parent = "-" if ind.parent is None else str(ind.parent)
        solved = "  [solved]" if ind.evaluation.metrics.get("solved") else ""
        lines.append(f"{ind.id:>7}  {ind.fitness:>10.6g}  {parent:>7}  {readable(space, ind.program)}{solved}")
    return "\n".join(lines)


def top_rows(store: Store, run: RunRecord, space, n: int) -> list[dict]:
    """The n best programs as data (`evolve top --json`), best first."""
    return [
        {"id": ind.id, "fitness": ind.fitness, "parent": ind.parent, "program": readable(space, ind.program),
         "metrics": ind.evaluation.metrics, "solved": bool(ind.evaluation.metrics.get("solved"))}
        for ind in store.top(run.id, n)
    ]


def predictor_stats(individuals: list[Individual], evaluation_seconds: float, tie: float = 1e-6) -> dict | None:
    """What the predictor did in a guided run (None for an unguided one): its online accuracy on
    child vs parent (judged before it trained on the pair; near-ties skipped), overall and over the
    last 500 calls, tries per evaluated child, and its seconds against the evaluations'."""
    fitness = {ind.id: max(ind.fitness, -1e30) for ind in individuals}
    guided = [ind for ind in individuals if "predicted" in ind.proposal and ind.parent in fitness and not ind.cached]
    if not guided:  # unguided, or every proposal fell back over max_predictor_share: the guidance summary alone
        return None if (guidance := guidance_summary(individuals)) is None else {"guidance": guidance}
    calls = [
        (ind.proposal["predicted"] > 0.5) == (gap > 0)
        for ind in guided
        if abs(gap := max(ind.fitness, -1e30) - fitness[ind.parent]) > tie
    ]
    inference = sum(ind.proposal.get("predictor_seconds", 0.0) for ind in individuals)
    training = max(ind.proposal.get("train_seconds", 0.0) for ind in individuals)
    recent = calls[-500:]
    return {
        "guided_children": len(guided),
        "calls": len(calls),
        "accuracy": sum(calls) / len(calls) if calls else None,
        "recent_calls": len(recent),
        "recent_accuracy": sum(recent) / len(recent) if recent else None,
        "tries_per_child": sum(ind.proposal["tries"] for ind in guided) / len(guided),
        "training_seconds": training,
        "inference_seconds": inference,
        "time_ratio": (inference + training) / evaluation_seconds if evaluation_seconds else None,
        "guidance": guidance_summary(individuals),  # its cost against its estimated saving (evolve/guidance_cost.py)
    }


def _predictor_text(stats: dict | None) -> list[str]:
    """`predictor_stats` as lines for the terminal (none for an unguided run)."""
    if stats is None:
        return []
    if "guided_children" not in stats:
        return [verdict_line(stats["guidance"])]
    accuracy = "-" if stats["accuracy"] is None else (
        f"{stats['accuracy']:.1%} overall, {stats['recent_accuracy']:.1%} in the last {stats['recent_calls']}")
    ratio = "" if stats["time_ratio"] is None else f"; {stats['time_ratio']:.3g}x the evaluation time"
    return [
        f"predictor: online accuracy {accuracy} (child vs parent, {stats['guided_children']} guided children)",
        f"predictor: {stats['tries_per_child']:.2f} tries per evaluated child",
        f"predictor time: {stats['training_seconds']:.2f} s training + {stats['inference_seconds']:.2f} s inference{ratio}",
        *filter(None, [verdict_line(stats.get("guidance"))]),
    ]


def show_data(store: Store, run: RunRecord, space, top: int = 5) -> dict:
    """Everything `evolve show` says, as data (`evolve show --json`)."""
    evaluated, cached = store.counts(run.id)
    history = store.fitness_history(run.id)
    individuals = store.individuals(run.id)
    probing = sum(ind.proposal.get("fingerprint_seconds", 0.0) for ind in individuals)
    seconds = sum(ind.seconds for ind in individuals) + probing if evaluated else 0.0
    reasons = collections.Counter(ind.evaluation.error for ind in individuals if not ind.cached and ind.evaluation.failed)
    return {
        "run": run_row(run, store, type(space)),
        "config": dataclasses.asdict(run.config),
        "evaluations": {
            "spent": evaluated, "budget": run.config.budget, "failed": sum(reasons.values()), "cached": cached,
            "pending": len(store.pending(run.id)), "seconds": seconds, "fingerprint_seconds": probing,
        },
        "failures": [{"reason": reason, "count": count} for reason, count in reasons.most_common()],
        "predictor": predictor_stats(individuals, seconds),
        "curve": [[x, y] for x, y in best_so_far(history)],
        "top": top_rows(store, run, space, top),
    }


def show(store: Store, run: RunRecord, space, top: int = 5) -> str:
    """`evolve show`: the run's settings and progress in words, its curve and its best programs."""
    data = show_data(store, run, space, top=0)
    cfg, spent = run.config, data["evaluations"]
    options = {**cfg.space_options, **cfg.strategy_options}
    if data["run"]["problem"] is not None:
        options.setdefault("problem", data["run"]["problem"])
    shown = ", ".join(f"{k}={_short(v)}" for k, v in options.items())
    workers = "1 worker" if cfg.workers == 1 else f"{cfg.workers} workers"
    lines = [
        f"run {run.id}: {cfg.space} / {cfg.strategy}" + (f" + {cfg.predictor}" if cfg.predictor else "")
        + (f" ({shown})" if shown else ""),
        f"status: {run.state}; seed {cfg.seed}; executor {cfg.executor} with {workers}"
        " (workers: how many evaluations are kept in flight at once)",
        f"evaluations: {spent['spent']} of {cfg.budget}; failed {spent['failed']}; pending {spent['pending']}",
        f"answered by the duplicate cache: {spent['cached']} (proposals that behave exactly like a program"
        " already evaluated reuse its result and spend none of the budget)",
    ]
    if spent["spent"]:
        seconds, probing = spent["seconds"], spent["fingerprint_seconds"]
        lines.append(f"evaluation time: {seconds:.2f} s in all, {seconds / spent['spent'] * 1e3:.3f} ms per evaluation "
                     f"({probing:.2f} s of it computing behaviour fingerprints for the duplicate cache)")
    if data["failures"]:
        lines.append("failures by reason:")
        lines += [f"  {failure['count']:>7}  {failure['reason']}" for failure in data["failures"]]
    lines += _predictor_text(data["predictor"])
    lines += ["", "best fitness so far:", ascii_curve([tuple(point) for point in data["curve"]]), "",
              "top programs:", top_table(store, run, space, top)]
    return "\n".join(lines)


def _short(value, limit: int = 40) -> str:
    """An option's value for one line: a long one (a CSV run's stored table) is cut."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_json(data) -> str:
    """Data for scripts as JSON text: a non-finite number (a failed program's fitness, -inf) is null,
    since JSON has no infinities."""
    import json

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {str(key): clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(data), indent=2)
