"""Seconds per nas-cells candidate: the masked network compiled once (the `trained` evaluator)
against jitting each architecture's own network (its flax export), and the digits accuracy of known
cells.

Same cells, same training (evolve.harness: same steps, batch, learning rate and seeds), one run. The
per-architecture path is what a search without masks pays: a new network per cell, so a new
compilation per cell. The two paths' accuracies are printed side by side: they differ only by
floating-point order inside the training (the exported network computes what the masked one
computes, see tests/test_nas_training.py), so they should agree closely.

With --index-records N, instead: seconds to index a NAS-Bench-101 data file (the tabular
evaluator's start), on a synthetic file of N records in the real format and of the real record size
(the real nasbench_only108.tfrecord has 1,270,872 records, 499 MB), with and without CRC checks.

    nice -n 10 python benchmarks/nas_eval.py [--seeds 3] [--random 2]
    nice -n 10 python benchmarks/nas_eval.py --index-records 127087
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, save_json, table  # noqa: E402

from evolve.harness import Harness  # noqa: E402
from evolve.search_spaces import nas_cells, nas_training, nasbench_file  # noqa: E402

REAL_RECORDS = 423_624 * 3

C3, C1, MP = nas_cells.AVAILABLE_OPS
KNOWN = {
    # the benchmark's notebook example; NAS-Bench-101 at 108 epochs, one run: validation 93.76%, test 93.12%
    "inception-like": ([[0, 1, 1, 1, 0, 1, 0], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 0, 0],
                        [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 1], [0] * 7], ["input", C1, C3, C3, C3, MP, "output"]),
    "chain of 5 conv3x3": (np.eye(7, k=1, dtype=int).tolist(), ["input"] + [C3] * 5 + ["output"]),
    "conv3x3 + skip": ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", C3, "output"]),
    "conv1x1": ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", C1, "output"]),
    "maxpool3x3": ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"]),
    "input to output": ([[0, 1], [0, 0]], ["input", "output"]),
}


class WithoutMasks:
    """An exported (one-cell) network called as the training task calls the masked one."""

    def __init__(self, network):
        self.network = network

    def init(self, key, x, adjacency, ops, train):
        return self.network.init(key, x, train=train)

    def apply(self, variables, x, adjacency, ops, train, mutable=False):
        return self.network.apply(variables, x, train=train, mutable=mutable)


def per_architecture(space, program, data) -> tuple[float, dict]:
    """Seconds to build, compile and train `program`'s own network once, and its accuracies."""
    start = time.perf_counter()
    namespace: dict = {}
    exec(compile(space.export(program, "flax"), "<exported cell>", "exec"), namespace)  # our own generated source
    task = nas_training.training_task(WithoutMasks(namespace["Network"]()), data, space.training["steps"], space.training["batch"])
    harness = Harness([task], {"lr": np.array([space.training["lr"]], np.float32)}, list(range(space.training["seeds"])))
    [outcome] = harness.run(nas_training.cell_arrays(program))
    return time.perf_counter() - start, {k: [float(a) for a in v[0]] for k, v in outcome.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="initialisations per cell (vmapped)")
    parser.add_argument("--random", type=int, default=2, help="random cells added to the known ones")
    parser.add_argument("--index-records", type=int, default=0, help="measure indexing a synthetic data file of N records")
    args = parser.parse_args()
    if args.index_records:
        return index_file(args.index_records)

    space = nas_cells.NasCells(evaluator="trained", seeds=args.seeds)
    rng = np.random.default_rng(0)
    cells = {name: nas_cells.from_spec(*spec) for name, spec in KNOWN.items()}
    for k in range(args.random):
        cells[f"random {k}"] = space.random_program(rng)

    start = time.perf_counter()
    evaluator = space.evaluator
    build = time.perf_counter() - start
    masked = {}
    for name, program in cells.items():
        start = time.perf_counter()
        [evaluation] = evaluator.evaluate([program])
        masked[name] = {"seconds": time.perf_counter() - start, **evaluation.metrics}
        print(f"masked    {name:20s} {masked[name]['seconds']:6.1f} s  validation {evaluation.fitness:.3f}", flush=True)
    assert evaluator.compilations == 1

    data = nas_training.digits()
    own = {}
    for name, program in cells.items():
        seconds, accuracy = per_architecture(space, program, data)
        own[name] = {"seconds": seconds, **accuracy}
        print(f"own jit   {name:20s} {seconds:6.1f} s  validation {np.mean(accuracy['validation_accuracy']):.3f}", flush=True)

    names = list(cells)
    later = names[1:]  # the masked path compiles on the first cell
    summary = {
        "masked_first_cell_s": masked[names[0]]["seconds"],
        "masked_per_cell_after_first_s": float(np.mean([masked[n]["seconds"] for n in later])),
        "masked_mean_per_cell_s": float(np.mean([masked[n]["seconds"] for n in names])),
        "own_jit_mean_per_cell_s": float(np.mean([own[n]["seconds"] for n in names])),
        "evaluator_build_s": build,
    }
    rows = [[n, space.describe(cells[n]), masked[n]["trainable_parameters"],
             f"{100 * np.mean(masked[n]['validation_accuracy_per_seed']):.1f} ± {100 * np.std(masked[n]['validation_accuracy_per_seed']):.1f}",
             f"{100 * masked[n]['test_accuracy']:.1f}", f"{100 * np.mean(own[n]['validation_accuracy']):.1f}",
             f"{masked[n]['seconds']:.1f}", f"{own[n]['seconds']:.1f}"] for n in names]
    print(table(rows, ["cell", "spelling", "params", "val % (masked)", "test %", "val % (own)", "masked s", "own jit s"]))
    print({k: round(v, 2) for k, v in summary.items()})
    save_json("nas_eval", {
        "settings": {**space.network, **space.training},
        "summary": summary,
        "cells": {n: {"describe": space.describe(cells[n]), "masked": masked[n], "own_jit": own[n]} for n in names},
    })
    plot(names, masked, own)


def index_file(records: int) -> None:
    """Seconds of `read_table` on a synthetic file of `records` records (three per cell)."""
    import tempfile

    rng = np.random.default_rng(0)
    space = nas_cells.NasCells(evaluator="tabular", data="-")
    rows = []
    for _ in range(records // 3):
        matrix, ops = nas_cells.spec(space.random_program(rng))
        module_hash = "%032x" % int(rng.integers(2**62))  # unique keys; the reader does not recompute hashes
        for _ in range(3):
            evaluations = tuple(nasbench_file.EvaluationData(epoch, *rng.random(4) * [2000, 1, 1, 1]) for epoch in (0.0, 54.0, 108.0))
            rows.append(nasbench_file.Record(module_hash, 108, matrix, ops, nasbench_file.ModelMetrics(evaluations, int(rng.integers(10**5, 5 * 10**7)), 2000.0)))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "synthetic.tfrecord")
        nasbench_file.write_file(path, rows)
        size = os.path.getsize(path)
        seconds = {}
        for check_crc in (True, False, True, False):
            start = time.perf_counter()
            table = nasbench_file.read_table(path, check_crc=check_crc)
            elapsed = time.perf_counter() - start
            key = "with_crc_s" if check_crc else "without_crc_s"
            seconds[key] = min(seconds.get(key, elapsed), elapsed)
        assert len(table) == records // 3
    scale = REAL_RECORDS / len(rows)
    result = {"records": len(rows), "bytes": size, "bytes_per_record": size / len(rows), **seconds,
              "real_file_estimate_with_crc_s": seconds["with_crc_s"] * scale,
              "real_file_estimate_without_crc_s": seconds["without_crc_s"] * scale}
    print({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})
    save_json("nas_index", result)


def plot(names, masked, own) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    x = np.arange(len(names))
    left.bar(x - 0.2, [masked[n]["seconds"] for n in names], 0.4, label="masked, compiled once")
    left.bar(x + 0.2, [own[n]["seconds"] for n in names], 0.4, label="own network, jitted per cell")
    left.set_xticks(x, names, rotation=30, ha="right")
    left.set_ylabel("seconds (compile + train)")
    left.set_title("seconds per candidate, in evaluation order")
    left.legend()
    accuracies = [100 * np.array(masked[n]["validation_accuracy_per_seed"]) for n in names]
    right.boxplot(accuracies, positions=x)
    right.set_xticks(x, names, rotation=30, ha="right")
    right.set_ylabel("digits validation accuracy, % (per seed)")
    right.set_title("known cells on the digits")
    fig.tight_layout()
    fig.savefig(figure_path("nas_eval"), dpi=110)
    print(f"wrote {figure_path('nas_eval')}")


if __name__ == "__main__":
    main()
