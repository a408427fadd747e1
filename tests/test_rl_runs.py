"""Whole searches in the rl-losses space with real DQN training (CartPole-v1, the cheap configuration
at a tiny budget: 700 environment steps, one seed): killed with SIGKILL then resumed, exactly what an
uninterrupted run does when it runs serially; on a two-node Ray cluster, killed and resumed, with
nothing lost or repeated (issue 10).

Evaluations take a fraction of a second at this budget; what costs is each process's setup (tracing
and compiling the DQN, training DQN's reference run: about a minute), so the uninterrupted run and
the one that is killed set up side by side."""

import os
import signal
import subprocess
import sys

import pytest

from watch import wait_until_recorded

pytest.importorskip("gymnax")

from evolve.engine import resume_run  # noqa: E402
from evolve.store import Store  # noqa: E402
from evolve.search_spaces.rl_losses import RLLosses  # noqa: E402

pytestmark = pytest.mark.slow  # whole searches with real DQN training in subprocesses, one on Ray

CLI = [sys.executable, "-m", "evolve.cli"]
#: the cheap configuration at test_rl_dqn's tiny budget: 200 updates after the warm-up, one seed
SPACE = {"config": "cheap", "train_steps": 700, "seeds": 1}
STRATEGY = {"population_size": 8, "tournament_size": 3}
BUDGET = 30
#: seconds a process may take to set up its evaluator (and, serially, to run the whole search)
SETUP_S = 600


def evolve_run(db: str, *extra: str) -> subprocess.Popen:
    options = [arg for k, v in SPACE.items() for arg in ("--space-opt", f"{k}={v}")]
    options += [arg for k, v in STRATEGY.items() for arg in ("--strategy-opt", f"{k}={v}")]
    return subprocess.Popen(CLI + ["run", "rl-losses", *options, "--budget", str(BUDGET), "--db", db, *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def kill_after(proc: subprocess.Popen, db: str, recorded: int) -> None:
    wait_until_recorded(proc, db, recorded, timeout=SETUP_S)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def trace(store: Store) -> list:
    return [(i.program.digest, i.parent, i.cached, i.fitness, i.evaluation.error, i.evaluation.metrics.get("return/CartPole-v1"))
            for i in store.individuals(1)]


def dqn_digest() -> str:
    return RLLosses(**SPACE).known_loss("dqn").digest


def test_a_killed_serial_run_resumes_to_exactly_the_uninterrupted_run(tmp_path):
    reference_db, db = str(tmp_path / "reference.db"), str(tmp_path / "killed.db")
    serial = ("--workers", "1", "--seed", "4")
    uninterrupted = evolve_run(reference_db, *serial)  # sets up alongside the run that is killed
    kill_after(evolve_run(db, *serial), db, 12)
    assert uninterrupted.wait(timeout=SETUP_S) == 0
    reference, killed = Store(reference_db), Store(db)
    assert 0 < sum(killed.counts(1)) < BUDGET and killed.run(1).config == reference.run(1).config
    assert resume_run(killed, 1).execute() == "budget"

    assert trace(killed) == trace(reference)
    evaluated = [i for i in reference.individuals(1) if not i.cached]
    assert len(evaluated) == BUDGET
    dqn = [i.fitness for i in evaluated if i.program.digest == dqn_digest()]
    assert dqn == [1.0]  # DQN is the unit of fitness
    assert len({i.fitness for i in evaluated if not i.evaluation.failed}) > BUDGET / 3  # real, distinct trainings


def test_a_search_on_ray_killed_and_resumed_loses_and_repeats_nothing(ray_cluster, tmp_path):
    db = str(tmp_path / "ray.db")
    kill_after(evolve_run(db, "--executor", "ray", "--address", ray_cluster.address, "--workers", "2",
                          "--executor-opt", "cpus_per_actor=0", "--executor-opt", f"start_timeout_s={SETUP_S}"), db, 10)
    store = Store(db)
    evaluated_at_kill, _ = store.counts(1)
    assert 0 < evaluated_at_kill < BUDGET

    done = subprocess.run(CLI + ["resume", "1", "--db", db], capture_output=True, text=True, timeout=SETUP_S)
    assert done.returncode == 0, done.stderr
    evaluated, cached = store.counts(1)
    rows = store.db.execute("SELECT id, ticket FROM individuals WHERE run_id = 1 ORDER BY id").fetchall()
    assert evaluated == BUDGET and [r[0] for r in rows] == list(range(1, evaluated + cached + 1))
    assert len({r[1] for r in rows}) == len(rows) and store.pending(1) == []
    individuals = store.individuals(1)
    assert [i.fitness for i in individuals if i.program.digest == dqn_digest() and not i.cached] == [1.0]
    for individual in individuals:  # every answer is a CartPole training's: a return, or a reason
        metrics = individual.evaluation.metrics
        assert individual.evaluation.failed or metrics["return/CartPole-v1"] > 0
