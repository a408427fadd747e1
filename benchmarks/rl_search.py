"""A search for RL losses seeded with DQN (issue 10): does regularized evolution find a loss that
beats DQN on the training suite, and how do its best programs do on the held-out suite?

Regularized evolution through the engine (serial executor, one SQLite store) in the rl-losses space
(`--config`, cheap by default: CartPole-v1), seeded with DQN only. The best distinct programs and the
published losses (DQN, Double DQN, DQNReg, DQNClipped) are then scored the same way on the training
suite and on the held-out suite (`suite=heldout`, never seen by the search; DQN is 1 there too), and
printed as formulas.

    nice -n 10 python benchmarks/rl_search.py [--budget 300] [--population 20] [--tournament 5] [--top 3]
        [--seed-with dqn|all] [--verify-seeds N] [--out NAME]

With --seed-with all and a speedup.py run's seed and budget it repeats that run's regularized
evolution (serial, seeded: the same search) and checks what it found with --verify-seeds more
training seeds and on the held-out suite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, figure_path, save_json, table  # noqa: E402

from evolve.engine import start_run  # noqa: E402
from evolve.plugin_manager import PluginManager, SpaceSpec  # noqa: E402
from evolve.store import RunConfig, Store  # noqa: E402

KNOWN = ("dqn", "double_dqn", "dqn_reg", "dqn_clipped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cheap", choices=("cheap", "full"))
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--population", type=int, default=20)
    parser.add_argument("--tournament", type=int, default=5)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seed-with", default="dqn", choices=("dqn", "all"),
                        help="the search's seed programs (benchmarks/speedup.py's runs use all: DQN and Double DQN)")
    parser.add_argument("--verify-seeds", type=int, default=None,
                        help="score every program again on the training suite with this many seeds (the search's"
                             " fitness rests on the preset's few), and on the held-out suite with as many")
    parser.add_argument("--db", default=os.path.join(RESULTS, "rl_search.db"))
    parser.add_argument("--out", default="rl_search", help="name of the results (results/NAME.json and .png)")
    parser.add_argument("--replot", action="store_true", help="only redraw the plot from results/NAME.json")
    args = parser.parse_args()
    if args.replot:
        with open(os.path.join(RESULTS, f"{args.out}.json")) as f:
            plot(json.load(f), args.out)
        return
    if os.path.exists(args.db):
        os.remove(args.db)

    options = {"config": args.config, "seed_with": args.seed_with}
    store = Store(args.db)
    config = RunConfig("rl-losses", options, strategy_options={"population_size": args.population, "tournament_size": args.tournament},
                       workers=args.workers, budget=args.budget, seed=args.seed)
    start = time.perf_counter()
    engine = start_run(store, config)
    engine.execute()
    search_seconds = time.perf_counter() - start
    train = engine.space  # the run's own space: its evaluator is built and compiled already

    best, fingerprints = [], set()
    for record in store.top(engine.run.id, 10 * args.top):
        fingerprint = train.fingerprint(record.program)
        if fingerprint not in fingerprints and len(best) < args.top:
            fingerprints.add(fingerprint)
            best.append(record)
    named = {name: train.known_loss(name) for name in KNOWN}
    named.update({f"search #{i + 1} (id {r.id})": r.program for i, r in enumerate(best)})

    train_eval = dict(zip(named, train.evaluate(list(named.values()))))
    more_seeds = {"seeds": args.verify_seeds} if args.verify_seeds else {}
    verify_eval = {}
    if more_seeds:
        verify = PluginManager().make_space(SpaceSpec("rl-losses", {**options, **more_seeds}))
        verify_eval = dict(zip(named, verify.evaluate(list(named.values()))))
    heldout = PluginManager().make_space(SpaceSpec("rl-losses", {**options, **more_seeds, "suite": "heldout"}))
    held_eval = dict(zip(named, heldout.evaluate(list(named.values()))))

    def shown(evaluation) -> str:
        return "failed" if evaluation.failed else f"{evaluation.fitness:.3f}"

    rows = [[name, shown(train_eval[name])] + ([shown(verify_eval[name])] if verify_eval else []) + [shown(held_eval[name]), train.describe(p)]
            for name, p in named.items()]
    verify_column = [f"train, {args.verify_seeds} seeds"] if verify_eval else []
    print(table(rows, ["loss", "train fitness"] + verify_column + ["held-out fitness", "formula"]))
    top = next((n for n in named if n.startswith("search")), None)
    beats = top is not None and train_eval[top].fitness > train_eval["dqn"].fitness
    verified = (top is not None and not verify_eval[top].failed and verify_eval[top].fitness > verify_eval["dqn"].fitness) if verify_eval else None
    print(f"search seeded with DQN beats DQN on the training suite: {beats} ({search_seconds:.0f} s, {args.budget} evaluations)")
    result = {
        "config": args.config, "budget": args.budget, "population": args.population, "tournament": args.tournament,
        "seed": args.seed, "seed_with": args.seed_with, "verify_seeds": args.verify_seeds, "workers": args.workers, "search_seconds": search_seconds, "beats_dqn_on_training_suite": beats,
        "beats_dqn_with_more_seeds": verified,
        "training_envs": list(train.config.suite_envs), "heldout_envs": list(heldout.config.suite_envs),
        "steps": {env: train.config.steps_for(env) for env in train.config.suite_envs}, "seeds": train.config.seeds, "db": os.path.relpath(args.db, RESULTS),
        "programs": {
            name: {"formula": train.describe(p), "train_fitness": None if train_eval[name].failed else train_eval[name].fitness,
                   "train_metrics": train_eval[name].metrics, "train_error": train_eval[name].error,
                   "verify_fitness": None if name not in verify_eval or verify_eval[name].failed else verify_eval[name].fitness,
                   "heldout_fitness": None if held_eval[name].failed else held_eval[name].fitness,
                   "heldout_metrics": held_eval[name].metrics, "heldout_error": held_eval[name].error, "program": p.to_dict()}
            for name, p in named.items()
        },
    }
    save_json(args.out, result)
    plot(result, args.out)


def plot(result: dict, name: str = "rl_search") -> None:
    """Training and held-out fitness of each program (DQN = 1 on both)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(result["programs"])
    train = [result["programs"][n]["train_fitness"] or 0.0 for n in names]
    held = [result["programs"][n]["heldout_fitness"] or 0.0 for n in names]
    bars = [(train, f"training ({', '.join(result['training_envs'])}, {result['seeds']} seeds)")]
    if result.get("verify_seeds"):
        bars.append(([result["programs"][n]["verify_fitness"] or 0.0 for n in names], f"training, {result['verify_seeds']} seeds"))
    bars.append((held, f"held out ({', '.join(result['heldout_envs'])})"))
    x = np.arange(len(names))
    width = 0.8 / len(bars)
    fig, ax = plt.subplots(figsize=(8, 3.8))
    for k, (values, label) in enumerate(bars):
        ax.bar(x + (k - (len(bars) - 1) / 2) * width, values, width, label=label)
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax.set_xticks(x, names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("fitness (DQN = 1)")
    ax.set_title(f"RL losses, search seeded with DQN ({result['budget']} evaluations, {result['config']})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure_path(name), dpi=120)
    print(f"wrote {figure_path(name)}")


if __name__ == "__main__":
    main()
