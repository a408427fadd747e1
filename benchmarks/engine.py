"""Evaluations per second of the whole loop: regularized evolution on symbolic regression with the
serial executor, proposal, fingerprinting, evaluation and SQLite store writes (to a file) included.

    python benchmarks/engine.py [--budget 20000] [--workers 1 16 64]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, save_json, table  # noqa: E402

from evolve.engine import start_run  # noqa: E402
from evolve.store import RunConfig, Store  # noqa: E402


def measure(problem: str, budget: int, workers: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(os.path.join(tmp, "bench.db"))
        config = RunConfig("symbolic-regression", {"problem": problem}, budget=budget, workers=workers, seed=seed)
        engine = start_run(store, config)
        engine.space.evaluate([engine.space.random_program(engine.rng)])  # exclude the first compile
        start = time.perf_counter()
        reason = engine.execute()
        seconds = time.perf_counter() - start
        evaluated, cached = store.counts(engine.run.id)
        assert reason == "budget" and evaluated == budget and not store.pending(engine.run.id)
        assert len(store.individuals(engine.run.id)) == evaluated + cached
        eval_seconds = sum(i.seconds for i in store.individuals(engine.run.id))
    return {
        "problem": problem, "workers": workers, "budget": budget, "seconds": seconds,
        "evaluations_per_second": evaluated / seconds, "cached": cached,
        "recorded_per_second": (evaluated + cached) / seconds,
        "evaluation_share": eval_seconds / seconds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=20000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--problem", default="nguyen-4")
    args = parser.parse_args()
    results = [measure(args.problem, args.budget, w, seed=0) for w in args.workers]
    rows = [[r["workers"], f"{r['evaluations_per_second']:,.0f}", f"{r['recorded_per_second']:,.0f}", r["cached"],
             f"{r['seconds']:.1f}", f"{100 * r['evaluation_share']:.0f}%"] for r in results]
    print(table(rows, ["in flight", "evaluations/s", "recorded/s", "cache answers", "seconds", "time in evaluate"]))
    save_json("engine", {"runs": results, "checked": "each run recorded exactly `budget` evaluations, none pending"})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([str(r["workers"]) for r in results], [r["evaluations_per_second"] for r in results])
    ax.axhline(1000, color="k", ls="--", lw=1, label="1,000/s")
    ax.set_xlabel("evaluations in flight (serial executor batch)")
    ax.set_ylabel("evaluations / s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(figure_path("engine"), dpi=120)


if __name__ == "__main__":
    main()
