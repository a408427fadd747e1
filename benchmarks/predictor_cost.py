"""Where PAM-RT's driver time goes, per proposal: predictor training, inference and graph encoding,
mutation chains, behaviour fingerprints (the strategy's novelty check and the engine's duplicate
cache), and the engine itself (the rest of the wall-clock, evaluation left out).

One serial run (one worker) of PAM-RT with the binary predictor on a symbolic-regression problem
(Nguyen-4 by default) for `--budget` evaluations. A reporter registered in code notes the clock and
the predictor's counters (`metrics()`) after every recorded individual; the strategy records its
own seconds with each proposal. From the first guided proposal on, the run is cut into windows of
`--window` evaluations; each category's figure is its mean per proposal in a window, and the table
gives the median over windows (training runs every few evaluations, so one proposal's figure is
mostly 0 or a whole training call: a window's mean is what a proposal costs).

On a shared machine wall-clock swings with the load (the same mutation code has measured 1.5 to 2x
apart in two runs), so each label also records the process's CPU seconds per proposal, every thread
counted (training on its own thread included): less sensitive to other processes, it is the figure
to compare labels measured at different times.

Results are kept per `--label` in benchmarks/results/predictor_cost.json (measure "before", change
the code, measure "after" with the same settings; `--note` says what code a label measured) and
drawn in predictor_cost.png. To measure code other than the checkout's, put its package first on
PYTHONPATH. Run it niced: `nice -n 10 python benchmarks/predictor_cost.py --label before`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, figure_path, save_json, table  # noqa: E402
import evolve  # noqa: E402
from evolve import hookimpl  # noqa: E402
from evolve.discriminator.model import trace_count  # noqa: E402
from evolve.engine import start_run  # noqa: E402
from evolve.plugin_manager import PluginManager  # noqa: E402
from evolve.store import RunConfig, Store  # noqa: E402

#: categories of driver time, in the order they are drawn
DRIVER = ("training", "encoding", "inference", "chains", "novelty fingerprints", "engine fingerprints", "engine")


class CostRecorder:
    """A reporter: after every recorded individual, the clock and the predictor's counters."""

    def __init__(self) -> None:
        self.engine = None
        self.rows: list[tuple[float, float, object, dict]] = []

    @hookimpl
    def evolve_individual_evaluated(self, run, individual):
        self.rows.append((time.perf_counter(), time.process_time(), individual, self.engine.predictor.metrics()))


def per_individual(rows: list[tuple[float, float, object, dict]]) -> list[dict]:
    """Seconds per category for each recorded individual after the first: what happened between the
    previous individual's record and its own (its proposal, evaluation, and the training after it)."""
    out = []
    for (t0, c0, _, m0), (t1, c1, ind, m1) in zip(rows, rows[1:]):
        delta = {k: m1.get(k, 0.0) - m0.get(k, 0.0) for k in
                 ("train_seconds", "train_encoding_seconds", "train_wait_seconds", "inference_seconds",
                  "inference_encoding_seconds", "pairs_compared", "train_steps")}
        background = bool(m1.get("background_training", False))
        waited = delta["train_wait_seconds"] if "train_wait_seconds" in m1 else delta["train_seconds"]
        info = ind.proposal
        cost = {
            "training": waited - (0.0 if background else delta["train_encoding_seconds"]),
            "encoding": delta["inference_encoding_seconds"] + (0.0 if background else delta["train_encoding_seconds"]),
            "inference": delta["inference_seconds"] - delta["inference_encoding_seconds"],
            "chains": info.get("mutation_seconds", 0.0),
            "novelty fingerprints": info.get("novelty_seconds", 0.0),
            "engine fingerprints": info.get("fingerprint_seconds", 0.0),
        }
        evaluation = ind.seconds
        cost["engine"] = (t1 - t0) - evaluation - sum(cost.values())
        cost["evaluation"] = evaluation
        cost["background training"] = delta["train_seconds"] if background else 0.0
        cost["process cpu"] = c1 - c0
        cost["pairs"] = delta["pairs_compared"]
        cost["train steps"] = delta["train_steps"]
        out.append({"guided": bool(info.get("guided")), "evaluated": not ind.cached, **cost})
    return out


def windows(costs: list[dict], width: int) -> list[dict]:
    """Means per proposal over consecutive windows of `width` evaluations, from the first guided proposal."""
    first = next((k for k, c in enumerate(costs) if c["guided"]), len(costs))
    out, current = [], []
    for c in costs[first:]:
        current.append(c)
        if sum(x["evaluated"] for x in current) == width:
            out.append({key: float(np.mean([x[key] for x in current])) for key in c if key not in ("guided", "evaluated")})
            current = []
    return out


def measure(args) -> dict:
    recorder = CostRecorder()
    predictor_options = dict(json.loads(args.predictor_options), seed=args.seed)
    config = RunConfig(
        "symbolic-regression", {"problem": args.problem}, "pam-rt",
        {"population_size": 100, "tournament_size": 10}, "binary", predictor_options,
        "serial", {}, 1, args.budget, args.seed,
    )
    store = Store(":memory:")
    engine = start_run(store, config, PluginManager(extra_plugins=(recorder,)))
    recorder.engine = engine
    start = time.perf_counter()
    engine.execute()
    wall = time.perf_counter() - start
    costs = per_individual(recorder.rows)
    per_window = windows(costs, args.window)
    if not per_window:
        raise SystemExit(f"no complete window of {args.window} guided evaluations: raise --budget")
    median = {key: float(np.median([w[key] for w in per_window])) for key in per_window[0]}
    metrics = engine.predictor.metrics()
    individuals = store.individuals(engine.run.id)
    return {
        "settings": {"problem": args.problem, "budget": args.budget, "seed": args.seed, "window": args.window,
                     "predictor_options": predictor_options},
        "code": {"evolve": os.path.dirname(evolve.__file__), "checkout_head": _commit()},
        "note": args.note,
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average": os.getloadavg(),
        "median_ms_per_proposal": {k: 1e3 * v for k, v in median.items() if k not in ("pairs", "train steps", "process cpu")},
        "driver_ms_per_proposal": 1e3 * float(np.median([sum(w[k] for k in DRIVER) for w in per_window])),
        "predictor_ms_per_proposal": 1e3 * float(np.median(
            [w["training"] + w["encoding"] + w["inference"] + w["background training"] for w in per_window])),
        "process_cpu_ms_per_proposal": 1e3 * median["process cpu"],
        "pairs_per_proposal": median["pairs"],
        "train_steps_per_proposal": median["train steps"],
        "windows_ms": [{k: 1e3 * v for k, v in w.items() if k not in ("pairs", "train steps")} for w in per_window],
        "wall_seconds": wall,
        "compilations": trace_count(),
        "best_fitness": max(ind.fitness for ind in individuals),
        "predictor_metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
    }


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    except OSError:
        return "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", help="the name these figures are kept under (e.g. before, after)")
    parser.add_argument("--problem", default="nguyen-4")
    parser.add_argument("--budget", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--window", type=int, default=100, help="evaluations per window")
    parser.add_argument("--predictor-options", default="{}", help="JSON options for the binary predictor")
    parser.add_argument("--note", default="", help="what code this label measures (kept with the figures)")
    parser.add_argument("--replot", action="store_true", help="redraw the figure from the saved results, measure nothing")
    args = parser.parse_args()
    if not (args.label or args.replot):
        parser.error("give --label (or --replot)")
    path = os.path.join(RESULTS, "predictor_cost.json")
    labels = {}
    if os.path.exists(path):
        with open(path) as f:
            labels = json.load(f).get("labels", {})
    if not args.replot:
        labels[args.label] = measure(args)
        save_json("predictor_cost", {"labels": labels})
    rows = [[label, *(f"{r['median_ms_per_proposal'][k]:.2f}" for k in (*DRIVER, "background training", "evaluation")),
             f"{r['driver_ms_per_proposal']:.2f}", f"{r['predictor_ms_per_proposal']:.2f}",
             f"{r['process_cpu_ms_per_proposal']:.2f}" if "process_cpu_ms_per_proposal" in r else "-"]
            for label, r in labels.items()]
    print("median ms per proposal over windows of", args.window, "evaluations")
    print(table(rows, ["label", *DRIVER, "background training", "evaluation", "driver", "predictor", "process cpu"]))
    plot(labels)


def plot(labels: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, series) = plt.subplots(1, 2, figsize=(12, 4))
    names = list(labels)
    y = np.arange(len(names))
    left = np.zeros(len(names))
    for k, category in enumerate((*DRIVER, "background training")):
        width = np.array([max(labels[n]["median_ms_per_proposal"][category], 0.0) for n in names])
        bars.barh(y, width, left=left, color=f"C{k}", label=category, hatch="//" if category == "background training" else None)
        left += width
    cpu = [labels[n].get("process_cpu_ms_per_proposal", np.nan) for n in names]
    bars.plot(cpu, y, "k|", markersize=28, markeredgewidth=2, label="process CPU (all threads)")
    bars.set_yticks(y, names)
    bars.invert_yaxis()
    bars.set_xlabel("ms per proposal (median over windows)")
    bars.set_title("PAM-RT driver time, by category")
    fig.legend(*bars.get_legend_handles_labels(), loc="lower center", ncol=5, fontsize=7)
    for k, name in enumerate(names):
        r = labels[name]
        driver = [sum(w[c] for c in DRIVER) for w in r["windows_ms"]]
        x = r["settings"]["window"] * (np.arange(len(driver)) + 1)
        series.plot(x, driver, marker=".", color=f"C{k}", label=f"{name}: driver")
    series.set_xlabel("guided evaluations")
    series.set_ylabel("driver ms per proposal (window mean)")
    series.set_ylim(bottom=0)
    series.legend(fontsize=7)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(figure_path("predictor_cost"), dpi=120)


if __name__ == "__main__":
    main()
