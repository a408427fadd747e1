"""Peak memory of a guided run against regularized evolution on the same problem and budget.

Each run is a whole search (engine, serial executor with the CLI's 16 evaluations in flight, a store
on disk, the strategies' and predictor's default options) in a process of its own, which reports its
peak resident set (`resource.getrusage(RUSAGE_SELF).ru_maxrss`), its resident set once the run is
built (the space's evaluator and JAX loaded, nothing searched yet) and, for PAM-RT, the predictor's
replay buffer and encoding cache sizes. Target (issue 12): PAM-RT's peak at most 1.5x RE's.

Measured (Nguyen-4, seed 0, load 5-10 on 2 cores): RE peaks at 234 MB (1,500) and 236 MB (5,000),
PAM-RT at 1,018 MB (4.4x) and 1,100 MB (4.7x), so not the target. Where it goes: JAX, flax and optax
with the network initialised are about 300 MB before anything is searched (RE loads JAX too, for
its interpreter, but nothing else); then each compiled shape of the network (training calls and
inference batches vary in graph slots and bins; a run meets about 15) keeps roughly 20 MB, and
compiling one peaks higher still. In one process at 600 evaluations, 731 MB fell to 437 MB when
the jitted functions were dropped and to 389 MB after jax.clear_caches(). The replay buffer and the
encodings are bounded (buffer_size 5,000 programs; 4,096 cached encodings) and small: 3,400 more
programs in the buffer cost the 5,000-evaluation run 82 MB in all. Bounding the compiled shapes
(least recently used of 3 per function, compiled ahead of time) was tried: 553 MB at the end instead
of 712, but the peak stayed (900 MB: compilation transients) and the run took 2.5x as long
(recompiling), so it was not kept.

    python benchmarks/predictor_memory.py [--problem nguyen-4] [--budgets 1500 5000] [--strategies re pam-rt]

Writes results/predictor_memory.json and results/predictor_memory.png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, save_json, table  # noqa: E402

STRATEGIES = {"re": "regularized-evolution", "novelty-re": "novelty-re", "pam-rt": "pam-rt"}


def resident_mb() -> float:
    """This process's resident set now, from /proc."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def child(strategy: str, problem: str, budget: int, seed: int, predictor_options: dict) -> dict:
    """One run in this process; what it measured, as a dict."""
    from evolve.engine import start_run
    from evolve.store import RunConfig, Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(os.path.join(tmp, "memory.db"))
        config = RunConfig("symbolic-regression", {"problem": problem}, STRATEGIES[strategy],
                           predictor_options=predictor_options if strategy == "pam-rt" else {}, budget=budget, seed=seed)
        engine = start_run(store, config)
        built = resident_mb()
        start = time.perf_counter()
        engine.execute()
        seconds = time.perf_counter() - start
        evaluated, cached = store.counts(engine.run.id)
        out = {"strategy": strategy, "budget": budget, "evaluated": evaluated, "cached": cached, "seconds": seconds,
               "built_mb": built, "end_mb": resident_mb(),
               "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if engine.predictor is not None:
            predictor = engine.predictor
            out["buffer"] = len(predictor.buffer)
            out["buffer_capacity"] = predictor.buffer.capacity
            out["encoding_cache"] = len(predictor.encoder._cache)
            out["buffer_encodings"] = len(predictor.trainer._mirror)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--problem", default="nguyen-4")
    parser.add_argument("--budgets", type=int, nargs="+", default=[1500, 5000])
    parser.add_argument("--strategies", nargs="+", default=["re", "pam-rt"], choices=list(STRATEGIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--predictor-opt", action="append", default=[], metavar="K=V",
                        help="options of PAM-RT's binary predictor (values as JSON)")
    parser.add_argument("--label", default="default", help="results are kept per label (e.g. before / after a change)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    predictor_options = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.predictor_opt)}
    if args.child:
        print(json.dumps(child(args.strategies[0], args.problem, args.budgets[0], args.seed, predictor_options)))
        return

    rows = []
    for budget in args.budgets:
        for strategy in args.strategies:
            cmd = [sys.executable, __file__, "--child", "--strategies", strategy, "--budgets", str(budget),
                   "--problem", args.problem, "--seed", str(args.seed), *[f"--predictor-opt={kv}" for kv in args.predictor_opt]]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{strategy} at {budget}: peak {row['peak_mb']:.0f} MB (built {row['built_mb']:.0f} MB), "
                  f"{row['seconds']:.0f} s", flush=True)
    for budget in args.budgets:
        base = next((r for r in rows if r["budget"] == budget and r["strategy"] == "re"), None)
        for r in rows:
            if base is not None and r["budget"] == budget:
                r["peak_vs_re"] = r["peak_mb"] / base["peak_mb"]
    print(table([[r["strategy"], r["budget"], f"{r['built_mb']:.0f}", f"{r['peak_mb']:.0f}",
                  f"{r.get('peak_vs_re', float('nan')):.2f}", r.get("buffer", "-"), r.get("encoding_cache", "-")]
                 for r in rows], ["strategy", "budget", "built MB", "peak MB", "peak / RE", "buffer", "encoding cache"]))
    labels = _previous_labels()
    labels[args.label] = {"problem": args.problem, "seed": args.seed, "predictor_options": predictor_options,
                          "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average": os.getloadavg(), "rows": rows}
    save_json("predictor_memory", {"labels": labels})
    _plot(labels)


def _previous_labels() -> dict:
    path = os.path.join(os.path.dirname(figure_path("predictor_memory")), "predictor_memory.json")
    try:
        with open(path) as f:
            return json.load(f).get("labels", {})
    except (OSError, ValueError):
        return {}


def _plot(labels: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    bars, names = [], []
    for label, data in labels.items():
        for r in data["rows"]:
            names.append(f"{label}\n{r['strategy']} {r['budget']}")
            bars.append((r["built_mb"], r["peak_mb"]))
    x = range(len(bars))
    ax.bar(x, [p for _, p in bars], color="tab:orange", label="peak")
    ax.bar(x, [b for b, _ in bars], color="tab:blue", label="built (before the search)")
    ax.set_xticks(list(x), names, fontsize=7)
    ax.set_ylabel("resident memory, MB")
    ax.set_title("peak memory per run (Nguyen problem, serial)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure_path("predictor_memory"), dpi=120)
    print(f"wrote {figure_path('predictor_memory')}")


if __name__ == "__main__":
    main()
