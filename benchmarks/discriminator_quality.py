"""How well the online discriminator judges the pairs PAM-RT asks about: a tournament parent against
its mutated children (a chain of 1 to 4 mutations), on programs it has never seen.

For each seed: run regularized evolution to `--evaluations`, train a fresh predictor on what it
evaluated (exactly as online training would have, in order), then draw `--parents` tournament parents
from the last population, mutate each into a chain of 4 children, evaluate every child for its true
fitness, and score the predictor on them. Children whose behaviour was already seen are left out
(guided strategies skip them), and so are ties. Reported per predictor configuration:

  AUC          P(child > parent) ranks better children above worse ones
  precision@3% the share of the 3% best-liked children that really beat their parent
  base rate    the share of all (novel) children that beat their parent: what unguided mutation gets
  train s      seconds of training for the whole run

and per seed, what the judged children are: the shares that are novel, tied with their parent
(among the novel), and failed evaluations, and how many pairs the AUC is computed on.

Any space: `--space optimizers --space-opt seed_with=sgd --population 20 --tournament 4` judges the
optimizer search as `speedup.py` runs it (the default is Nguyen-4 with population 100, tournament 10).

Writes benchmarks/results/discriminator_quality.json and .png (`--out` names another pair, and
`--configurations 0` runs the default configuration alone). Run it niced:
`nice -n 10 python benchmarks/discriminator_quality.py`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, key_value_options, save_json, table  # noqa: E402
from evolve.discriminator.replay import WORST  # noqa: E402
from evolve.engine import start_run  # noqa: E402
from evolve.plugin_manager import PluginManager  # noqa: E402
from evolve.store import RunConfig, Store  # noqa: E402

#: label -> binary-predictor options; the first is the default configuration
CONFIGURATIONS = {
    "default (no attention, 16 steps / 4 evals)": {},
    # the GPS layer's attention was on by default until issue 12's cheaper predictor
    "attention (width 64, 16 steps / 4 evals)": {"attention": True},
    "width 32, 2 steps / 4 evals": {"attention": True, "width": 32, "steps": 2},
    "width 64, 8 steps / 4 evals": {"attention": True, "steps": 8},
    "width 64, 16 steps, depth 3": {"attention": True, "depth": 3},
    "no random-walk encodings": {"attention": True, "rw_steps": 0},
    # cheaper candidates (issue 12: at most 5 ms of predictor time per proposal)
    "no attention, width 32": {"width": 32},
    "no attention, width 32, 8 steps / 4 evals": {"width": 32, "steps": 8},
    "no attention, 4 steps / 4 evals": {"steps": 4},
    "no attention, width 32, 4 steps / 4 evals": {"width": 32, "steps": 4},
    "no attention, 8 steps / 4 evals": {"steps": 8},
    # training calls every 4 evaluations throughout, not spread out as the buffer fills
    "no attention, fixed interval": {"slow_down": 0},
}


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return float("nan")
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


def judged_pairs(args: argparse.Namespace, seed: int):
    """An RE run's individuals, and `parents` x 4 (parent, child, ...) from its last population."""
    store = Store(":memory:")
    config = RunConfig(args.space, key_value_options(args.space_opt), "regularized-evolution",
                       {"population_size": args.population, "tournament_size": args.tournament}, None, {},
                       "serial", {}, 1, args.evaluations, seed)
    engine = start_run(store, config)
    engine.execute()
    individuals = [ind for ind in store.individuals(engine.run.id) if not ind.cached]
    space = engine.space
    rng = np.random.default_rng(seed + 1000)
    population = individuals[-args.population:]
    fitness = np.array([ind.fitness if np.isfinite(ind.fitness) else WORST for ind in population])
    parents, children = [], []
    for _ in range(args.parents):
        entrants = rng.choice(len(population), args.tournament, replace=False)
        parent = population[entrants[np.argmax(fitness[entrants])]]
        child = parent.program
        for _ in range(4):
            child = space.mutate(child, rng)
            parents.append(parent)
            children.append(child)
    evaluations = space.evaluate(children)
    failed = np.array([not np.isfinite(e.fitness) for e in evaluations])
    child_fitness = np.array([WORST if bad else e.fitness for e, bad in zip(evaluations, failed)])
    parent_fitness = np.array([p.fitness if np.isfinite(p.fitness) else WORST for p in parents])
    seen = set(space.fingerprints([ind.program for ind in individuals]))
    novel = np.array([fp not in seen for fp in space.fingerprints(children)])
    better = child_fitness > parent_fitness + 1e-6
    decided = novel & (better | (child_fitness < parent_fitness - 1e-6))
    make_up = {"novel": float(novel.mean()), "tied_among_novel": float((novel & ~decided).sum() / max(1, novel.sum())),
               "failed": float(failed.mean()), "decided_pairs": int(decided.sum())}
    return space, individuals, parents, children, better, novel, decided, make_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="symbolic-regression")
    parser.add_argument("--space-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="a space option (repeatable; symbolic regression defaults to problem=nguyen-4)")
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--tournament", type=int, default=10)
    parser.add_argument("--parents", type=int, default=300, help="tournament parents judged per seed (4 children each)")
    parser.add_argument("--evaluations", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--configurations", nargs="*", type=int, help="indices into CONFIGURATIONS (default: all)")
    parser.add_argument("--out", default="discriminator_quality", help="results name (JSON and PNG in results/)")
    args = parser.parse_args()
    if args.space == "symbolic-regression" and "problem" not in key_value_options(args.space_opt):
        args.space_opt.insert(0, "problem=nguyen-4")
    plugins = PluginManager()
    labels = list(CONFIGURATIONS)
    configurations = {labels[k]: CONFIGURATIONS[labels[k]] for k in (args.configurations or range(len(labels)))}
    rows: dict[str, list[tuple[float, float, float, float]]] = {label: [] for label in configurations}
    make_ups = []
    for seed in range(args.seeds):
        space, individuals, parents, children, better, novel, decided, make_up = judged_pairs(args, seed)
        make_ups.append(make_up)
        print(f"seed {seed}  children: " + ", ".join(f"{k} {v:.3g}" for k, v in make_up.items()), flush=True)
        for label, options in configurations.items():
            predictor = plugins.make_predictor("binary", space, dict(options, seed=seed))
            start = time.perf_counter()
            predictor.observe(individuals)
            train = time.perf_counter() - start
            p = predictor.compare(children, [parent.program for parent in parents])
            top = np.argsort(-np.where(novel, p, -1.0))[: max(1, int(0.03 * novel.sum()))]
            rows[label].append((auc(p[decided], better[decided]), float(better[top].mean()), float(better[novel].mean()), train))
            print(f"seed {seed}  {label:<40} AUC {rows[label][-1][0]:.3f}  precision@3% {rows[label][-1][1]:.3f}", flush=True)
    summary = {label: dict(zip(("auc", "precision_at_3pct", "base_rate", "train_seconds"), np.mean(r, axis=0).tolist()))
               for label, r in rows.items()}
    print(table([[label, f"{s['auc']:.3f}", f"{s['precision_at_3pct']:.3f}", f"{s['base_rate']:.3f}", f"{s['train_seconds']:.1f}"]
                 for label, s in summary.items()], ["configuration", "AUC", "precision@3%", "base rate", "train s"]))
    save_json(args.out, {"args": vars(args), "configurations": configurations, "summary": summary,
                         "per_seed": {label: r for label, r in rows.items()}, "children_per_seed": make_ups})
    _plot(summary, args.out)


def _plot(summary: dict, name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(summary)
    fig, ax = plt.subplots(figsize=(8, 4))
    y = np.arange(len(labels))
    ax.barh(y - 0.2, [summary[l]["auc"] for l in labels], 0.4, label="AUC")
    ax.barh(y + 0.2, [summary[l]["precision_at_3pct"] for l in labels], 0.4, label="precision@3%")
    ax.axvline(np.mean([summary[l]["base_rate"] for l in labels]), color="gray", ls=":", label="base rate")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    ax.set_title("discriminator on tournament parent vs mutated child")
    fig.tight_layout()
    fig.savefig(figure_path(name), dpi=120)


if __name__ == "__main__":
    main()
