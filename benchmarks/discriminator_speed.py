"""How fast the discriminator is on this machine: pair comparisons per second (batched inference, the
programs already encoded and not) and seconds per training step, for programs of 10, 30 and 60 nodes.

Writes benchmarks/results/discriminator_speed.json. Run it niced: `nice -n 10 python benchmarks/discriminator_speed.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from evolve.discriminator.online import OnlineDiscriminator
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.population import Individual
from evolve.program import Node, Program
from evolve.space import Evaluation

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def program_of_size(space, n: int, rng: np.random.Generator) -> Program:
    """A random program of exactly n live nodes: each op reads the node before it (and others)."""
    ops = [op for op in space.vocabulary.ops]
    nodes = [Node("input")]
    for i in range(1, n):
        op = ops[int(rng.integers(len(ops)))]
        args = (i - 1,) + tuple(int(rng.integers(i)) for _ in range(op.arity - 1))
        nodes.append(Node(op.name, args))
    return Program(tuple(nodes), (n - 1,), space.name)


def measure(size: int, pairs: int, repeats: int) -> dict:
    space = PluginManager().make_space(SpaceSpec("symbolic-regression", {"problem": "nguyen-4", "max_nodes": 64}))
    rng = np.random.default_rng(size)
    predictor = OnlineDiscriminator(space, warmup=10**9)
    programs = [program_of_size(space, size, rng) for _ in range(2 * pairs * (repeats + 1))]
    predictor.observe([Individual(i + 1, p, Evaluation(float(rng.random()))) for i, p in enumerate(programs[:512])])
    a, b = programs[:pairs], programs[pairs : 2 * pairs]
    predictor.compare(a, b)  # compile
    start = time.perf_counter()
    for _ in range(repeats):
        predictor.compare(a, b)
    warm = repeats * pairs / (time.perf_counter() - start)
    fresh_sets = [programs[2 * pairs * (k + 1) : 2 * pairs * (k + 2)] for k in range(repeats)]
    start = time.perf_counter()
    for fresh in fresh_sets:
        predictor.compare(fresh[:pairs], fresh[pairs:])
    cold = repeats * pairs / (time.perf_counter() - start)
    predictor._train(2)  # compile
    start = time.perf_counter()
    predictor._train(repeats)
    step = (time.perf_counter() - start) / repeats
    return {
        "nodes": size, "pairs_per_call": pairs,
        "pairs_per_second_encoded": warm, "pairs_per_second_with_encoding": cold,
        "seconds_per_training_step": step, "programs_per_training_step": predictor.trainer.options.batch_programs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10, 30, 60])
    parser.add_argument("--pairs", type=int, default=32, help="pairs per batched call")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default=os.path.join(RESULTS, "discriminator_speed.json"))
    args = parser.parse_args()
    rows = []
    for size in args.sizes:
        row = measure(size, args.pairs, args.repeats)
        rows.append(row)
        print(f"{size:>3} nodes: {row['pairs_per_second_encoded']:>8.0f} pairs/s encoded, "
              f"{row['pairs_per_second_with_encoding']:>8.0f} pairs/s with encoding, "
              f"{row['seconds_per_training_step'] * 1e3:.1f} ms per training step", flush=True)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"device": "cpu", "cores": os.cpu_count(), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
