"""Whole searches in the nas-cells space (tabular evaluator, on small data files in the benchmark's
format): on a two-node Ray cluster, and killed with SIGKILL then resumed, with nothing lost or
repeated, and exactly what an uninterrupted run does when it runs serially."""

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from watch import wait_until_recorded

from evolve.engine import resume_run, start_run
from evolve.store import RunConfig, Store
from evolve.search_spaces import nas_cells as nc
from evolve.search_spaces import nasbench_file as nf

from test_nas_cells import runs, space

pytestmark = pytest.mark.slow  # whole searches in subprocesses, one on Ray

CLI = [sys.executable, "-m", "evolve.cli"]
#: the official regularized-evolution baseline's settings
BASELINE = {"population_size": 50, "tournament_size": 10}


def data_file(path, cells: int = 200) -> str:
    """A data file holding `cells` cells met by random sampling and mutation chains, with validation
    accuracies that depend on the cell (so selection has something to find) and 3 runs each."""
    grammar, rng, hashes = space(), np.random.default_rng(0), set()
    program = grammar.random_program(rng)
    while len(hashes) < cells:
        program = grammar.mutate(program, rng) if rng.random() < 0.8 else grammar.random_program(rng)
        hashes.add(nc.module_hash(program))
    records = []
    for h in sorted(hashes):
        v = 0.80 + 0.15 * (int(h[:6], 16) / 0xFFFFFF)
        records += runs(h, [v - 0.002, v, v + 0.002], seconds=1000.0 + int(h[6:9], 16))
    nf.write_file(path, records)
    return str(path)


def config(data: str, budget: int, **kw) -> RunConfig:
    return RunConfig("nas-cells", {"evaluator": "tabular", "data": data, "seed": 3}, strategy_options=BASELINE,
                     budget=budget, **kw)


def evolve_run(data: str, db: str, budget: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        CLI + ["run", "nas-cells", "--space-opt", "evaluator=tabular", "--space-opt", f"data={data}",
               "--space-opt", "seed=3", "--strategy-opt", "population_size=50", "--strategy-opt", "tournament_size=10",
               "--budget", str(budget), "--db", db, *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_after(proc: subprocess.Popen, db: str, recorded: int) -> None:
    wait_until_recorded(proc, db, recorded)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_killed_serial_run_resumes_to_exactly_the_uninterrupted_run(tmp_path):
    data, budget = data_file(tmp_path / "cells.tfrecord"), 400
    reference = Store(str(tmp_path / "reference.db"))
    start_run(reference, config(data, budget, workers=1, seed=4)).execute()

    db = str(tmp_path / "killed.db")
    kill_after(evolve_run(data, db, budget, "--workers", "1", "--seed", "4"), db, 150)
    killed = Store(db)
    assert 0 < sum(killed.counts(1)) < budget and killed.run(1).config == reference.run(1).config
    assert resume_run(killed, 1).execute() == "budget"

    def trace(store):
        return [(i.program.digest, i.parent, i.cached, i.fitness, i.evaluation.metrics.get("repeat"))
                for i in store.individuals(1)]

    assert trace(killed) == trace(reference)
    found = [i.fitness for i in reference.individuals(1) if not i.evaluation.failed]
    assert max(found) > 0.92 and len(found) > budget / 4  # it searched, among cells of the file


def test_a_search_on_ray_killed_and_resumed_loses_and_repeats_nothing(ray_cluster, tmp_path):
    data, budget = data_file(tmp_path / "cells.tfrecord"), 300
    db = str(tmp_path / "ray.db")
    kill_after(evolve_run(data, db, budget, "--executor", "ray", "--address", ray_cluster.address, "--workers", "4",
                          "--executor-opt", "cpus_per_actor=0"), db, 60)
    store = Store(db)
    evaluated_at_kill, _ = store.counts(1)
    assert 0 < evaluated_at_kill < budget

    done = subprocess.run(CLI + ["resume", "1", "--db", db], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    evaluated, cached = store.counts(1)
    rows = store.db.execute("SELECT id, ticket FROM individuals WHERE run_id = 1 ORDER BY id").fetchall()
    assert evaluated == budget and [r[0] for r in rows] == list(range(1, evaluated + cached + 1))
    assert len({r[1] for r in rows}) == len(rows) and store.pending(1) == []
    table = nf.read_table(data, 108, True)
    for individual in store.individuals(1):  # what the Ray workers looked up is the file's
        if not individual.evaluation.failed:
            assert individual.fitness in table.get(individual.evaluation.metrics["module_hash"]).validation_accuracy
