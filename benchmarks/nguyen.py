"""Solve rate and evaluations-to-solve on Nguyen-1..12 with regularized evolution.

Each (problem, seed) is a real search of up to --budget evaluations that stops when a program
recovers the target exactly (checked symbolically by sympy, or on a dense grid when sympy gives up).

    python benchmarks/nguyen.py [--seeds 10] [--budget 20000] [--problems nguyen-1 ...] [--jobs 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, save_json, table  # noqa: E402


def search(job: tuple[str, int, int, str]) -> dict:
    from evolve.engine import start_run
    from evolve.store import RunConfig, Store

    problem, seed, budget, strategy = job
    store = Store(":memory:")
    config = RunConfig("symbolic-regression", {"problem": problem}, strategy=strategy, budget=budget, seed=seed,
                       stop_when_solved=True)
    start = time.perf_counter()
    engine = start_run(store, config)
    reason = engine.execute()
    evaluated, cached = store.counts(1)
    solved_at = None
    if reason == "solved":
        spent = 0
        for ind in store.individuals(1):
            spent += not ind.cached
            if ind.evaluation.metrics.get("solved"):
                solved_at = spent
                break
    best = store.top(1, 1)[0]
    return {
        "problem": problem, "seed": seed, "solved": reason == "solved", "evaluations_to_solve": solved_at,
        "evaluations": evaluated, "cached": cached, "best_fitness": best.fitness,
        "best": engine.space.describe(best.program), "proof": best.evaluation.metrics.get("proof"),
        "seconds": time.perf_counter() - start,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=20000)
    parser.add_argument("--problems", nargs="+", default=[f"nguyen-{i}" for i in range(1, 13)])
    parser.add_argument("--strategy", default="regularized-evolution")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    jobs = [(p, s, args.budget, args.strategy) for p in args.problems for s in range(args.seeds)]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        runs = []
        for result in pool.imap_unordered(search, jobs):
            runs.append(result)
            print(f"{result['problem']:>10} seed {result['seed']}: "
                  f"{'solved at ' + str(result['evaluations_to_solve']) if result['solved'] else 'not solved'}"
                  f" ({result['seconds']:.1f} s)", flush=True)

    summary = []
    for p in args.problems:
        mine = [r for r in runs if r["problem"] == p]
        solved = [r["evaluations_to_solve"] for r in mine if r["solved"]]
        summary.append({
            "problem": p, "seeds": len(mine), "solved": len(solved),
            "median_evaluations_to_solve": statistics.median(solved) if solved else None,
            "median_best_fitness": statistics.median(r["best_fitness"] for r in mine),
        })
    rows = [[s["problem"], f"{s['solved']}/{s['seeds']}", s["median_evaluations_to_solve"] or "-",
             f"{s['median_best_fitness']:.4f}"] for s in summary]
    print(table(rows, ["problem", "solved", "median evals to solve", "median best fitness"]))
    save_json("nguyen", {"strategy": args.strategy, "budget": args.budget, "summary": summary,
                         "runs": sorted(runs, key=lambda r: (r["problem"], r["seed"])),
                         "checked": "solved = exact recovery (sympy simplification, or dense-grid agreement to 1e-6)"})
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    ax.bar([s["problem"].replace("nguyen-", "N") for s in summary], [s["solved"] / s["seeds"] for s in summary])
    ax.set_ylabel("solve rate")
    ax.set_title(f"{args.strategy}, budget {args.budget}, {args.seeds} seeds")
    fig.tight_layout()
    fig.savefig(figure_path("nguyen"), dpi=120)


if __name__ == "__main__":
    main()
