"""The two optimizer searches of issue 5, and how their best programs generalize.

1. Seeded with plain SGD only: does evolution find a program that beats SGD with momentum on the
   training suite?
2. Seeded with SGD, momentum, Adam and Lion: does it find one that beats Adam there (fitness > 1)?

Both are regularized evolution through the engine (serial executor, one SQLite store). The best
programs and the four seeds are then scored on the held-out suite, whose tasks the search never saw
(fitness normalized against Adam there the same way), and printed as readable update rules.

    nice -n 10 python benchmarks/optimizer_search.py [--budget 1500] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, save_json, table  # noqa: E402

from evolve.engine import start_run  # noqa: E402
from evolve.plugin_manager import PluginManager, SpaceSpec  # noqa: E402
from evolve.search_spaces import optimizer_programs  # noqa: E402
from evolve.store import RunConfig, Store  # noqa: E402


def search(store: Store, seed_with: str, args) -> dict:
    config = RunConfig(
        "optimizers", {"seed_with": seed_with},
        strategy_options={"population_size": args.population, "tournament_size": args.tournament},
        workers=args.workers, budget=args.budget, seed=args.seed,
    )
    start = time.perf_counter()
    engine = start_run(store, config)
    engine.execute()
    best = store.top(engine.run.id, 1)[0]
    return {"run": engine.run.id, "seed_with": seed_with, "seconds": time.perf_counter() - start,
            "best_id": best.id, "best": best.program, "train_fitness": best.evaluation.fitness,
            "train_metrics": best.evaluation.metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=1500)
    parser.add_argument("--population", type=int, default=50)
    parser.add_argument("--tournament", type=int, default=10)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", default=os.path.join(RESULTS, "optimizer_search.db"))
    args = parser.parse_args()
    if os.path.exists(args.db):
        os.remove(args.db)
    os.makedirs(os.path.dirname(args.db), exist_ok=True)

    train = PluginManager().make_space(SpaceSpec("optimizers", {}))
    heldout = PluginManager().make_space(SpaceSpec("optimizers", {"suite": "heldout"}))
    store = Store(args.db)
    runs = [search(store, "sgd", args), search(store, "all", args)]

    seeds = {name: f() for name, f in optimizer_programs.SEEDS.items()}
    named = {**seeds, **{f"best of search seeded with {r['seed_with']}": r["best"] for r in runs}}
    train_fit = dict(zip(named, (e.fitness for e in train.evaluate(list(named.values())))))
    held = dict(zip(named, heldout.evaluate(list(named.values()))))
    rows = [[name, f"{train_fit[name]:.3f}", f"{held[name].fitness:.3f}", train.describe(p)] for name, p in named.items()]
    print(table(rows, ["program", "train fitness", "held-out fitness", "update rule (p <- p - lr*u)"]))

    verdicts = {
        "sgd_seeded_beats_momentum": runs[0]["train_fitness"] > train_fit["momentum"],
        "all_seeded_beats_adam": runs[1]["train_fitness"] > train_fit["adam"],
    }
    for k, v in verdicts.items():
        print(f"{k}: {v}")
    save_json("optimizer_search", {
        "budget": args.budget, "population": args.population, "tournament": args.tournament, "seed": args.seed,
        "db": os.path.relpath(args.db, RESULTS), **verdicts,
        "searches": [{k: v for k, v in r.items() if k != "best"} | {"best_rule": train.describe(r["best"]),
                      "best_program": r["best"].to_dict()} for r in runs],
        "programs": {name: {"rule": train.describe(p), "train_fitness": train_fit[name],
                            "heldout_fitness": held[name].fitness, "heldout_metrics": held[name].metrics,
                            "heldout_error": held[name].error} for name, p in named.items()},
    })


if __name__ == "__main__":
    main()
