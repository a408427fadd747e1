"""The Ray executor on real Ray: the embedded local default, a two-node cluster joined by address, worker
deaths, time limits, and a driver killed with SIGKILL then resumed.

The failing and hanging evaluations come from the built-in `sleep` space (crash_rate, crash_after,
hang_rate), which the actors build from its SpaceSpec like any other space.
"""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from watch import wait_until_recorded

from evolve.engine import prepare, start_run
from evolve.executors import WorkItem
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.ray_executor import RayExecutor
from evolve.search_spaces.sleep import _unit
from evolve.store import RunConfig, Store

CLI = [sys.executable, "-m", "evolve.cli"]


def _programs(space_options: dict, n: int, chosen, seed: int = 0):
    """n distinct random programs of the sleep space for which `chosen(program)` holds."""
    space = PluginManager().make_space(SpaceSpec("sleep", space_options))
    rng = np.random.default_rng(seed)
    out = {}
    while len(out) < n:
        p = space.random_program(rng)
        if chosen(p):
            out[p.digest] = p
    return list(out.values())


def _drain(executor, items) -> dict:
    executor.submit(items)
    results = {}
    while len(results) < len(items):
        results.update({r.ticket: r for r in executor.results()})
    return results


def test_cli_search_on_an_embedded_local_ray(tmp_path):
    """No --address: Ray starts on this machine, the search runs, and Ray's own output stays quiet."""
    db = str(tmp_path / "run.db")
    done = subprocess.run(
        CLI + ["run", "sleep", "--space-opt", "seconds=0.01", "--executor", "ray", "--workers", "3",
               "--executor-opt", "cpus_per_actor=0", "--budget", "30", "--db", db],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines() == [f"run 1 started in {db} (if stopped: evolve resume 1 --db {db})"]
    assert Store(db).counts(1)[0] == 30


def test_search_on_a_two_node_cluster(ray_cluster, tmp_path):
    store = Store(str(tmp_path / "run.db"))
    config = RunConfig(space="sleep", space_options={"seconds": 0.01}, executor="ray",
                       executor_options={"address": ray_cluster.address, "actors": 3}, workers=6, budget=60)
    engine = start_run(store, config)
    assert engine.execute() == "budget"
    assert len(engine.executor.nodes) == 2  # 3 actors of 1 CPU on a 2 + 1 CPU cluster: both nodes
    assert store.counts(1)[0] == 60
    assert all(i.evaluation.error is None for i in store.individuals(1))


def test_a_dead_worker_is_replaced_and_its_program_retried_then_failed(ray_cluster):
    options = {"seconds": 0, "crash_rate": 0.5}
    poison = _programs(options, 1, lambda p: _unit(p, 8) < 0.5)
    healthy = _programs(options, 3, lambda p: _unit(p, 8) >= 0.5)
    executor = RayExecutor(SpaceSpec("sleep", options), workers=4, actors=2, cpus_per_actor=0, max_retries=1)
    try:
        # batches of two: a batch that dies is split, so the healthy program in it still succeeds
        results = _drain(executor, [WorkItem(i, p) for i, p in enumerate(poison + healthy)])
    finally:
        executor.shutdown()
    assert results[0].evaluation.error.startswith("worker died")
    assert results[0].evaluation.error.endswith("after 2 tries")
    assert all(results[t].evaluation.error is None for t in range(1, 4))


def test_a_transient_worker_death_succeeds_on_retry(ray_cluster):
    options = {"seconds": 0, "crash_after": 3}  # every worker process dies on its third evaluation
    programs = _programs(options, 3, lambda p: True)
    executor = RayExecutor(SpaceSpec("sleep", options), workers=3, actors=1, cpus_per_actor=0, max_retries=1)
    try:
        results = _drain(executor, [WorkItem(i, p) for i, p in enumerate(programs)])
    finally:
        executor.shutdown()
    assert [results[i].evaluation.error for i in range(3)] == [None, None, None]


def test_an_evaluation_past_its_time_limit_is_stopped_and_recorded_as_timeout(ray_cluster):
    options = {"seconds": 0, "hang_rate": 0.5}
    hanging = _programs(options, 2, lambda p: _unit(p, 16) < 0.5)
    healthy = _programs(options, 3, lambda p: _unit(p, 16) >= 0.5)
    executor = RayExecutor(SpaceSpec("sleep", options), workers=4, actors=2, cpus_per_actor=0, timeout_s=1.0)
    try:
        start = time.monotonic()
        results = _drain(executor, [WorkItem(i, p) for i, p in enumerate(hanging + healthy[:2])])
        assert time.monotonic() - start < 60
        after = _drain(executor, [WorkItem(9, healthy[2])])  # the replaced workers keep working
    finally:
        executor.shutdown()
    assert [results[t].evaluation.error for t in (0, 1)] == ["timeout after 1 s"] * 2
    assert [results[t].evaluation.error for t in (2, 3)] == [None, None]
    assert after[9].evaluation.error is None


def test_a_driver_killed_with_sigkill_resumes_on_ray_with_nothing_lost_or_repeated(ray_cluster, tmp_path):
    db = str(tmp_path / "run.db")
    budget = 120
    proc = subprocess.Popen(
        CLI + ["run", "sleep", "--space-opt", "seconds=0.05", "--executor", "ray", "--address", ray_cluster.address,
               "--workers", "2", "--executor-opt", "cpus_per_actor=0", "--budget", str(budget), "--db", db],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_until_recorded(proc, db, 30)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(db)
    evaluated_at_kill, _ = store.counts(1)
    pending_at_kill = {p.ticket for p in store.pending(1)}
    assert 0 < evaluated_at_kill < budget and pending_at_kill

    done = subprocess.run(CLI + ["resume", "1", "--db", db], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    evaluated, cached = store.counts(1)
    assert evaluated == budget
    rows = store.db.execute("SELECT id, ticket FROM individuals WHERE run_id = 1 ORDER BY id").fetchall()
    assert [r[0] for r in rows] == list(range(1, evaluated + cached + 1))
    tickets = [r[1] for r in rows]
    assert len(set(tickets)) == len(tickets) and pending_at_kill <= set(tickets)
    assert store.pending(1) == []


@pytest.mark.parametrize("extra, message", [
    (["--executor", "ray", "--address", "127.0.0.1:9"], "evolve: error: cannot reach the Ray cluster at 127.0.0.1:9"),
    (["--address", "auto"], "evolve: error: --address joins a Ray cluster; it needs --executor ray"),
])
def test_address_mistakes_end_in_one_line(tmp_path, extra, message):
    done = subprocess.run(CLI + ["run", "sleep", "--db", str(tmp_path / "run.db"), *extra],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith(message) and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("executor, options, background", [
    ("ray", {}, True),  # results come back in completion order: training leaves the proposal path
    ("ray", {"background": False}, False),  # a run's own choice is kept
    ("serial", {}, None),  # reproducible step for step: training stays in `observe`
])
def test_guided_runs_on_ray_train_their_predictor_in_the_background(executor, options, background):
    config = prepare(RunConfig("symbolic-regression", {"problem": "nguyen-1"}, "pam-rt", {}, None, options, executor))
    assert config.predictor == "binary"
    assert config.predictor_options.get("background") == background
