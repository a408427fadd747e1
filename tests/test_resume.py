"""A run killed with SIGKILL at any moment resumes with no evaluation lost and none repeated."""

import os
import signal
import subprocess
import sys

from watch import wait_until_recorded

from evolve.engine import resume_run, start_run
from evolve.store import RunConfig, Store

BUDGET = 8000


def test_sigkill_then_resume_ends_with_exactly_the_budget(tmp_path):
    db = str(tmp_path / "run.db")
    cmd = [sys.executable, "-m", "evolve.cli", "run", "symbolic-regression", "--problem", "nguyen-5",
           "--budget", str(BUDGET), "--seed", "2", "--db", db]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_recorded(proc, db, 1500)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    store = Store(db)
    assert store.run(1).status == "running"  # it never got to say otherwise
    assert store.run(1).state == "stopped (driver gone)"  # but its driver is gone, and readers are told so
    evaluated_at_kill, _ = store.counts(1)
    pending_at_kill = {p.ticket for p in store.pending(1)}
    assert 0 < evaluated_at_kill < BUDGET

    engine = resume_run(store, 1)
    assert engine.execute() == "budget"

    evaluated, cached = store.counts(1)
    assert evaluated == BUDGET
    rows = store.db.execute("SELECT id, ticket FROM individuals WHERE run_id = 1 ORDER BY id").fetchall()
    ids, tickets = [r[0] for r in rows], [r[1] for r in rows]
    assert ids == list(range(1, evaluated + cached + 1))
    assert len(set(tickets)) == len(tickets)  # nothing evaluated twice
    assert pending_at_kill <= set(tickets)  # what was in flight at the kill was evaluated after it
    assert store.pending(1) == []
    assert store.run(1).status == "finished"
    # the engine's population is exactly the one the store implies: the last P recorded
    capacity = engine.population.capacity
    assert [i.id for i in engine.population] == [i.id for i in store.individuals(1, last=capacity)]


def test_interrupted_run_resumes_from_the_cli(tmp_path):
    """Ctrl-C marks the run interrupted; `evolve resume` finishes it."""
    db = str(tmp_path / "run.db")
    budget = 3000
    cmd = [sys.executable, "-m", "evolve.cli", "run", "symbolic-regression", "--problem", "nguyen-5",
           "--budget", str(budget), "--db", db]
    # A shell starts background jobs with SIGINT ignored, and Python keeps it ignored: give the run
    # the default disposition, so the test also holds when pytest itself runs in the background.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_until_recorded(proc, db, 300)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "evolve resume 1" in err and "Traceback" not in err, err[-2000:]
    assert Store(db).run(1).status == "interrupted"
    done = subprocess.run([sys.executable, "-m", "evolve.cli", "resume", "1", "--db", db], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert Store(db).counts(1)[0] == budget


def test_guided_run_killed_and_resumed_proposes_what_an_uninterrupted_run_proposes(tmp_path):
    """PAM-RT, serial, one worker: the random stream, the population, the predictor (checkpoint +
    replay) and the strategy's memory of what it proposed (replay) all come back exactly."""
    budget = 320
    options = {"strategy": "pam-rt", "workers": 1, "budget": budget, "seed": 5,
               "strategy_options": {"population_size": 40, "tournament_size": 5},
               "predictor_options": {"width": 16, "heads": 2, "warmup": 60, "warmup_steps": 20, "steps": 2, "seed": 1}}
    config = RunConfig("symbolic-regression", {"problem": "nguyen-4"}, **options)
    reference = Store(str(tmp_path / "reference.db"))
    start_run(reference, config).execute()

    db = str(tmp_path / "killed.db")
    cmd = [sys.executable, "-m", "evolve.cli", "run", "symbolic-regression", "--problem", "nguyen-4",
           "--strategy", "pam-rt", "--workers", "1", "--budget", str(budget), "--seed", "5", "--db", db,
           "--strategy-opt", "population_size=40", "--strategy-opt", "tournament_size=5",
           *[arg for k, v in options["predictor_options"].items() for arg in ("--predictor-opt", f"{k}={v}")]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_recorded(proc, db, 250)  # past the predictor's checkpoint at 200 recorded individuals
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = Store(db)
    assert killed.run(1).config == reference.run(1).config
    at_kill = sum(killed.counts(1))
    assert 200 < at_kill < budget
    assert killed.load_checkpoint(1, "predictor") is not None

    resume_run(killed, 1).execute()

    def trace(store):
        return [(i.program.digest, i.parent, i.cached, i.proposal.get("tries"), i.proposal.get("accepted"))
                for i in store.individuals(1)]

    assert trace(killed) == trace(reference)
    assert any(i.proposal.get("guided") for i in killed.individuals(1)[at_kill:])  # the predictor was in use


def test_one_driver_at_a_time_and_sigterm_stops_cleanly(tmp_path):
    """A second `evolve resume` of a live run is refused with one line naming the process that drives
    it, and changes nothing; SIGTERM stops the run as Ctrl-C does; then resume finishes it."""
    db = str(tmp_path / "run.db")
    budget = 4000
    cmd = [sys.executable, "-m", "evolve.cli", "run", "symbolic-regression", "--problem", "nguyen-5",
           "--budget", str(budget), "--db", db]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_until_recorded(proc, db, 300)
    assert proc.poll() is None
    second = subprocess.run([sys.executable, "-m", "evolve.cli", "resume", "1", "--db", db],
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert f"is being driven by process {proc.pid} on" in second.stderr
    listing = subprocess.run([sys.executable, "-m", "evolve.cli", "runs", "--db", db], capture_output=True, text=True)
    assert listing.stdout.rstrip().endswith("running")

    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "evolve resume 1" in err and "Traceback" not in err, err[-2000:]
    run = Store(db).run(1)
    assert run.status == "interrupted" and run.state == "interrupted" and run.driver is None
    done = subprocess.run([sys.executable, "-m", "evolve.cli", "resume", "1", "--db", db], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    store = Store(db)
    assert store.counts(1)[0] == budget and store.pending(1) == []
    tickets = [r[0] for r in store.db.execute("SELECT ticket FROM individuals WHERE run_id = 1")]
    assert len(set(tickets)) == len(tickets)
