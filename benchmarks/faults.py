"""Fault injection (issue 14): whatever stops a run, no evaluation is lost, and the run says
truthfully what it is.

Every fault hits real `evolve` processes started through the CLI:

* driver kills: SIGKILL of the driver at random moments of a serial run, a Ray run that starts its
  own Ray, and a guided PAM-RT run, each followed by `evolve resume` (the last one is left to finish
  the run). A moment falls in a phase drawn from PHASES: start-up (imports, Ray's start, building
  the space), restoring (the run taken, nothing new evaluated yet) or running;
* worker kills: SIGKILL of Ray worker processes while they evaluate;
* hangs: evaluations that never return, past the Ray executor's time limit (`timeout_s`);
* a full disk: the store's filesystem fills up mid-run (a small tmpfs where this machine lets us
  mount one, else a simulated SQLITE_FULL through SQLite's max_page_count); the run must stop with
  one clear line, and finish with `evolve resume` once space is freed.

After each fault, and at the end of each run, the store must show:
  - individual ids 1..N, no ticket twice, no proposal both pending and recorded;
  - everything recorded before a fault unchanged after it, and every proposal pending at a fault
    recorded by the end (otherwise: evaluations lost);
  - a truthful status: never "running" once the driver is dead; "finished (budget)" at the end;
  - exactly the budget of evaluations, and no pending rows at the end;
  - the population the store implies: a child proposed after a fault has its parent among the last
    P individuals recorded at that fault, or later ones; for serial runs with one worker, the same
    individuals in the same order as an uninterrupted run (exact resume);
  - no orphaned processes: every process a driver started is gone within ORPHAN_GRACE seconds of the
    driver's end (this process adopts orphans, so none escapes the count, whatever its name).

    python benchmarks/faults.py            # 20 driver kills per kind, and the rest: about 15 minutes
                                           # on 2 busy cores; writes results/faults.json
    python benchmarks/faults.py --small    # the size tests/test_faults.py runs (about a minute)
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import json
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Iterator

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import save_json, table  # noqa: E402

CLI = [sys.executable, "-m", "evolve.cli"]
#: Seconds the processes of a dead driver get to go away before they count as orphans.
ORPHAN_GRACE = 15.0
#: Seconds a driver left to finish a run may take.
FINISH_TIMEOUT = 600.0


# ---------------------------------------------------------------------------------------- the runs


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """A run to inject faults into: its `evolve run` arguments (no --db), budget and population size."""

    name: str
    args: tuple[str, ...]
    budget: int
    population: int

    def run_args(self) -> list[str]:
        return ["run", *self.args, "--budget", str(self.budget), "--strategy-opt", f"population_size={self.population}"]


def serial_run(budget: int) -> RunSpec:
    return RunSpec("serial", ("symbolic-regression", "--problem", "nguyen-4", "--workers", "1", "--seed", "3",
                              "--strategy-opt", "tournament_size=5"), budget, 50)


def ray_run(budget: int) -> RunSpec:
    return RunSpec("ray", ("sleep", "--space-opt", "seconds=0.1", "--executor", "ray", "--workers", "4",
                           "--executor-opt", "cpus_per_actor=0", "--seed", "4", "--strategy-opt", "tournament_size=5"),
                   budget, 20)


def guided_run(budget: int) -> RunSpec:
    predictor = {"width": 16, "heads": 2, "warmup": 60, "warmup_steps": 20, "steps": 2, "seed": 1}
    return RunSpec("guided PAM-RT", ("symbolic-regression", "--problem", "nguyen-4", "--strategy", "pam-rt",
                                     "--workers", "1", "--seed", "5", "--strategy-opt", "tournament_size=5",
                                     *[a for k, v in predictor.items() for a in ("--predictor-opt", f"{k}={v}")]),
                   budget, 40)


# ---------------------------------------------------------------------------------------- processes


@dataclasses.dataclass
class Driver:
    """An `evolve` process started by this suite; `others` are the processes this one had already."""

    proc: subprocess.Popen
    log: str
    others: set[int]

    def stderr(self) -> str:
        with open(self.log) as f:
            return f.read()


def launch(args: list[str], workdir: str, label: str, command: list[str] = CLI) -> Driver:
    others = {p.pid for p in _descendants()}
    log = os.path.join(workdir, f"{label}.log")
    with open(log, "w") as err:
        proc = subprocess.Popen(command + args, stdout=subprocess.DEVNULL, stderr=err)
    return Driver(proc, log, others)


#: prctl(2) option: orphans among this process's descendants are re-parented to it, not to init.
PR_SET_CHILD_SUBREAPER = 36


@contextlib.contextmanager
def adopting_orphans() -> Iterator[None]:
    """Make this process the subreaper of everything it starts (Linux), so a process orphaned by a
    killed driver is re-parented here and `orphans()` finds it, whatever its name, title or
    environment (Ray retitles its processes and overwrites their environment block)."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    if prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed: orphans could not be counted")
    try:
        yield
    finally:
        prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


def _descendants() -> list:
    import psutil

    return psutil.Process().children(recursive=True)


def orphans(driver: Driver, grace: float = ORPHAN_GRACE) -> tuple[list[str], float]:
    """Wait (at most `grace` seconds) until no process the ended driver started is left; returns the
    names of those still alive then (killed now, so the next fault starts clean), and the seconds
    waited. Run inside `adopting_orphans()`, where the orphans are this process's descendants."""
    import psutil

    start = time.monotonic()
    while True:
        left = []
        for p in _descendants():
            if p.pid in driver.others:
                continue
            with contextlib.suppress(psutil.Error):
                if p.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(p.pid, os.WNOHANG)  # an adopted orphan that has ended
                else:
                    left.append(p)
        if not left or time.monotonic() - start > grace:
            break
        time.sleep(0.2)
    names = []
    for p in left:
        with contextlib.suppress(psutil.Error):
            names.append((p.cmdline() or [p.name()])[0][:60])
            p.kill()
    return names, round(time.monotonic() - start, 2)


# ---------------------------------------------------------------------------------------- the store


@dataclasses.dataclass
class Snapshot:
    """What a store says about run 1 at one moment."""

    rows: dict[int, tuple]  # id -> (ticket, digest, fitness, error, cached, parent)
    pending: set[int]
    state: str
    driver_pid: int | None
    evaluated: int

    @property
    def tickets(self) -> set[int]:
        return {row[0] for row in self.rows.values()}

    @property
    def max_ticket(self) -> int:
        return max([*self.tickets, *self.pending], default=0)


def snapshot(db: str) -> Snapshot | None:
    """Run 1 as the store holds it, or None when there is no run yet."""
    from evolve.store import Store

    if not os.path.exists(db):
        return None
    with Store(db, read_only=True) as store:
        if store.db.execute("SELECT COUNT(*) FROM runs WHERE id = 1").fetchone()[0] == 0:
            return None
        run = store.run(1)
        rows = {
            r[0]: tuple(r[1:])
            for r in store.db.execute(
                "SELECT id, ticket, digest, fitness, error, cached, parent FROM individuals WHERE run_id = 1"
            )
        }
        pending = {t for (t,) in store.db.execute("SELECT ticket FROM pending WHERE run_id = 1")}
        evaluated = store.counts(1)[0]
    return Snapshot(rows, pending, run.state, run.driver.pid if run.driver else None, evaluated)


def store_problems(snap: Snapshot) -> list[str]:
    """What is wrong with a store at any moment: ids, tickets, pending rows."""
    problems = []
    if sorted(snap.rows) != list(range(1, len(snap.rows) + 1)):
        problems.append("individual ids are not 1..N")
    if len(snap.tickets) != len(snap.rows):
        problems.append(f"{len(snap.rows) - len(snap.tickets)} tickets recorded twice")
    if snap.pending & snap.tickets:
        problems.append(f"{len(snap.pending & snap.tickets)} proposals both pending and recorded")
    return problems


def integrity(db: str) -> str:
    with contextlib.closing(sqlite3.connect(db)) as c:
        return c.execute("PRAGMA integrity_check").fetchone()[0]


def lost(history: list[Snapshot], final: Snapshot) -> int:
    """Evaluations lost: individuals recorded at a fault that are gone or changed at the end, and
    proposals pending at a fault never recorded."""
    changed = {i for snap in history for i, row in snap.rows.items() if final.rows.get(i) != row}
    unanswered = {t for snap in history for t in snap.pending} - final.tickets
    return len(changed) + len(unanswered)


def parents_outside_population(history: list[Snapshot], final: Snapshot, population: int) -> int:
    """Children whose parent was not in the population the store implied when they were proposed: a
    proposal made after a fault (ticket above every ticket the store held then) must have a parent
    among the last P individuals recorded at the fault, or later ones; and no parent comes after its child."""
    faults = [(snap.max_ticket, len(snap.rows)) for snap in history]
    bad = 0
    for i, (ticket, *_, parent) in final.rows.items():
        if parent is None:
            continue
        earliest = max((recorded - population + 1 for last, recorded in faults if ticket > last), default=1)
        bad += not earliest <= parent < i
    return bad


def trace(db: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(db)) as c:
        return c.execute("SELECT digest, parent, cached FROM individuals WHERE run_id = 1 ORDER BY id").fetchall()


def final_problems(spec: RunSpec, db: str, history: list[Snapshot], reference: str | None) -> tuple[list[str], int, Snapshot]:
    """Everything checked once a run has finished: (problems, evaluations lost, the final snapshot)."""
    final = snapshot(db)
    if final is None:
        return ["the run is gone"], 0, final
    problems = store_problems(final)
    if final.evaluated != spec.budget:
        problems.append(f"{final.evaluated} evaluations, not the budget of {spec.budget}")
    if final.pending:
        problems.append(f"{len(final.pending)} pending rows left")
    if final.state != "finished (budget)":
        problems.append(f"status {final.state!r}, not 'finished (budget)'")
    outside = parents_outside_population(history, final, spec.population)
    if outside:
        problems.append(f"{outside} parents outside the population the store implied")
    if reference is not None and trace(db) != trace(reference):
        problems.append("the resumed run differs from the uninterrupted one")
    if (check := integrity(db)) != "ok":
        problems.append(f"integrity check: {check}")
    return problems, lost(history, final), final


def finish(args: list[str], workdir: str, label: str) -> tuple[Driver, int, float]:
    """A driver left to finish: (driver, exit status, seconds)."""
    start = time.monotonic()
    driver = launch(args, workdir, label)
    rc = wait_or_kill(driver)
    return driver, rc, round(time.monotonic() - start, 1)


def wait_or_kill(driver: Driver, timeout: float = FINISH_TIMEOUT) -> int:
    """The driver's exit status; one that runs past `timeout` is killed (and its status is -9)."""
    try:
        return driver.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        driver.proc.kill()
        return driver.proc.wait()


def reference_run(spec: RunSpec, workdir: str) -> str:
    """The uninterrupted run, for runs whose resume must be exact."""
    db = os.path.join(workdir, f"{slug(spec.name)}-reference.db")
    driver = launch([*spec.run_args(), "--db", db], workdir, f"{slug(spec.name)}-reference")
    if wait_or_kill(driver) != 0:
        raise RuntimeError(f"the reference run failed: {driver.stderr()[-2000:]}")
    return db


def slug(name: str) -> str:
    return name.lower().replace(" ", "-")


# ---------------------------------------------------------------------------------------- the faults


@dataclasses.dataclass
class Outcome:
    """One kind of fault: how many were injected, how many the run survived (every check after it
    and at the end held), evaluations lost, orphaned processes, and what went wrong."""

    fault: str
    injected: int = 0
    survived: int = 0
    lost: int = 0
    orphans: int = 0
    problems: list[str] = dataclasses.field(default_factory=list)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and self.lost == 0 and self.orphans == 0 and self.survived == self.injected


#: Where driver kills are aimed, and how often: its start-up (imports, Ray's start, building the
#: space, before it takes the run), its restoring (after it took the run, before it evaluates
#: anything new: rebuilding the population, the strategy and the predictor), or its running.
PHASES = {"start-up": 0.3, "restoring": 0.2, "running": 0.5}


@dataclasses.dataclass
class PhaseTimes:
    """Seconds the drivers of one run took to take it, and then to record their first evaluation."""

    start_up: list[float] = dataclasses.field(default_factory=list)
    restoring: list[float] = dataclasses.field(default_factory=list)


def kill_at_random_moment(driver: Driver, db: str, budget: int, kills_left: int, times: PhaseTimes,
                          rng: random.Random, phases: dict[str, float] = PHASES) -> tuple[float, int | None]:
    """SIGKILL the driver at a random moment of a phase drawn from `phases`: uniformly within the
    start-up or restoring time measured so far, or while it runs, after a random number of further
    evaluations (at most its share of what is left of the budget, so the run outlasts its kills
    however fast the machine). Returns (seconds after its start, None), or (seconds, exit status)
    when it ended by itself first."""
    start = time.monotonic()
    phase = rng.choices(list(phases), weights=list(phases.values()))[0]
    if phase == "start-up":  # but never past it: a driver that took the run is killed at once
        deadline = start + rng.uniform(0.0, statistics.median(times.start_up) if times.start_up else 3.0)
        while time.monotonic() < deadline and not drives(db, driver.proc.pid) and driver.proc.poll() is None:
            time.sleep(0.02)
    else:
        while not (took := drives(db, driver.proc.pid)) and driver.proc.poll() is None:
            time.sleep(0.02)
        if took:
            taken = time.monotonic()
            times.start_up.append(taken - start)
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as store:
                evaluated = evaluations(store)
                if phase == "restoring":
                    _wait(driver, rng.uniform(0.0, statistics.median(times.restoring) if times.restoring else 1.0))
                else:
                    target = evaluated + 1 + rng.randint(0, max(0, budget - evaluated) // (kills_left + 1))
                    while (now := evaluations(store)) < target and driver.proc.poll() is None:
                        if now > evaluated and len(times.restoring) < len(times.start_up):
                            times.restoring.append(time.monotonic() - taken)
                        time.sleep(0.02)
    rc = driver.proc.poll()
    if rc is None:
        driver.proc.send_signal(signal.SIGKILL)
        driver.proc.wait()
    return round(time.monotonic() - start, 2), rc


def _wait(driver: Driver, seconds: float) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        driver.proc.wait(seconds)


def evaluations(store: sqlite3.Connection) -> int:
    return store.execute("SELECT COALESCE(SUM(1 - cached), 0) FROM individuals WHERE run_id = 1").fetchone()[0]


def drives(db: str, pid: int) -> bool:
    """Whether process `pid` has taken run 1 (the store names it as the run's driver)."""
    if not os.path.exists(db):
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            row = c.execute("SELECT driver FROM runs WHERE id = 1").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] is not None and json.loads(row[0]).get("pid") == pid


def truthful(snap: Snapshot, budget: int) -> bool:
    """A run whose driver was killed says so; or it had finished before the kill."""
    return snap.state == "stopped (driver gone)" or (snap.state == "finished (budget)" and snap.evaluated == budget)


def _moment(before: Snapshot | None, after: Snapshot | None, pid: int) -> str:
    """When the kill came: before the driver took the run (imports, Ray's start, building the space),
    after it took the run but before it recorded anything (restoring), or while it ran."""
    if after is None or after.driver_pid != pid:
        return "start-up"
    if before is not None and len(after.rows) == len(before.rows):
        return "restoring"
    return "running"


def kill_drivers(spec: RunSpec, kills: int, rng: random.Random, workdir: str, reference: str | None = None,
                 phases: dict[str, float] = PHASES) -> Outcome:
    """SIGKILL the driver `kills` times, each at a random moment of its life (in a phase drawn from
    `phases`); each time, resume with a new driver; the last one is left to finish the run. With
    `reference`, the finished run must equal that uninterrupted one."""
    out = Outcome(f"driver SIGKILL ({spec.name})")
    db = os.path.join(workdir, f"{slug(spec.name)}.db")
    history: list[Snapshot] = []
    moments = []
    times = PhaseTimes()
    while out.injected < kills:
        before = snapshot(db)
        args = ["resume", "1", "--db", db] if before is not None else [*spec.run_args(), "--db", db]
        driver = launch(args, workdir, f"{slug(spec.name)}-{len(moments) + 1}")
        delay, rc = kill_at_random_moment(driver, db, spec.budget, kills - out.injected, times, rng, phases)
        if rc is not None:  # it ended before the kill: the run finished early, or failed
            if rc != 0:
                out.problems.append(f"a driver exited with {rc}: {driver.stderr().strip()[-500:]}")
            break
        out.injected += 1
        left, waited = orphans(driver)
        out.orphans += len(left)
        after = snapshot(db)
        problems = [f"orphaned processes: {left}"] if left else []
        if after is not None:
            problems += store_problems(after)
            if not truthful(after, spec.budget):
                problems.append(f"status {after.state!r} after its driver was killed")
            changed = sum(history[-1].rows[i] != after.rows.get(i) for i in history[-1].rows) if history else 0
            if changed:
                problems.append(f"{changed} recorded individuals changed or vanished")
            history.append(after)
        moments.append({
            "after_s": round(delay, 2),
            "moment": _moment(before, after, driver.proc.pid),
            "recorded": 0 if after is None else len(after.rows),
            "pending": 0 if after is None else len(after.pending),
            "state": None if after is None else after.state,
            "processes_gone_after_s": waited,
            "problems": problems,
        })
        out.survived += not problems
        if after is not None and after.state.startswith("finished"):
            break  # killed after it finished: nothing is left to resume
    seconds, last = None, snapshot(db)
    if last is None or not last.state.startswith("finished"):
        args = ["resume", "1", "--db", db] if last is not None else [*spec.run_args(), "--db", db]
        driver, rc, seconds = finish(args, workdir, f"{slug(spec.name)}-final")
        left, _ = orphans(driver)
        out.orphans += len(left)
        if rc != 0:
            out.problems.append(f"the final resume exited with {rc}: {driver.stderr().strip()[-500:]}")
        if left:
            out.problems.append(f"orphaned processes after the final resume: {left}")
    problems, out.lost, final = final_problems(spec, db, history, reference)
    out.problems += problems
    if out.problems:
        out.survived = 0  # the run did not end whole: no fault was survived
    out.details = {
        "budget": spec.budget, "kills": moments, "final_resume_s": seconds,
        "recorded": None if final is None else len(final.rows),
        "exact_resume_checked": reference is not None,
        "moments": {m: sum(k["moment"] == m for k in moments) for m in ("start-up", "restoring", "running")},
    }
    return out


def kill_ray_workers(kills: int, budget: int, rng: random.Random, workdir: str) -> Outcome:
    """SIGKILL Ray worker processes while they evaluate; the run must finish as if nothing happened:
    each killed worker replaced, its programs evaluated again, none recorded as failed."""
    out = Outcome("Ray worker SIGKILL")
    spec = RunSpec("ray-workers", ("sleep", "--space-opt", "seconds=0.2", "--executor", "ray", "--workers", "4",
                                   "--executor-opt", "cpus_per_actor=0", "--seed", "6"), budget, 100)
    db = os.path.join(workdir, "ray-workers.db")
    driver = launch([*spec.run_args(), "--db", db], workdir, "ray-workers")
    deadline = time.monotonic() + FINISH_TIMEOUT
    while recorded(db) < 1 and driver.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    killed = []
    while out.injected < kills and driver.proc.poll() is None:
        time.sleep(rng.uniform(0.3, 1.5))
        busy = [p for p in _ray_workers(driver) if p[1].endswith(".evaluate")]
        if not busy:
            continue
        pid, title = rng.choice(busy)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            out.injected += 1
            killed.append(title)
    rc = wait_or_kill(driver)
    left, _ = orphans(driver)
    out.orphans += len(left)
    if rc != 0:
        out.problems.append(f"the run exited with {rc}: {driver.stderr().strip()[-500:]}")
    problems, out.lost, final = final_problems(spec, db, [], None)
    out.problems += problems
    died = sum(1 for row in (final.rows.values() if final else ()) if (row[3] or "").startswith("worker died"))
    if died:
        out.problems.append(f"{died} evaluations recorded as failed because their worker was killed")
    out.survived = out.injected if not out.problems and not left else 0
    out.details = {"budget": budget, "killed": killed, "failed_by_worker_death": died}
    return out


def recorded(db: str) -> int:
    """Individuals recorded so far (0 while the store has none)."""
    try:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as c:
            return c.execute("SELECT COUNT(*) FROM individuals").fetchone()[0]
    except sqlite3.Error:
        return 0


def _ray_workers(driver: Driver) -> list[tuple[int, str]]:
    """(pid, title) of the driver's Ray workers (children of its raylet)."""
    import psutil

    out = []
    for p in psutil.Process(driver.proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            title = (p.cmdline() or [""])[0]
            if title.startswith("ray::_Worker"):
                out.append((p.pid, title))
    return out


def hang_past_time_limit(budget: int, workdir: str) -> Outcome:
    """Evaluations that never return: each must be stopped at the Ray executor's time limit and
    recorded as a timeout (and only those), and the run must end with its budget and no hung process."""
    from evolve.search_spaces.sleep import _unit
    from evolve.store import Store

    hang_rate, limit = 0.1, 1
    out = Outcome("hang past the time limit")
    spec = RunSpec("hang", ("sleep", "--space-opt", "seconds=0.02", "--space-opt", f"hang_rate={hang_rate}",
                            "--executor", "ray", "--workers", "4", "--executor-opt", "cpus_per_actor=0",
                            "--executor-opt", f"timeout_s={limit}", "--seed", "7"), budget, 20)
    db = os.path.join(workdir, "hang.db")
    start = time.monotonic()
    driver = launch([*spec.run_args(), "--db", db], workdir, "hang")
    rc = wait_or_kill(driver)
    left, _ = orphans(driver)
    out.orphans += len(left)
    if rc != 0:
        out.problems.append(f"the run exited with {rc}: {driver.stderr().strip()[-500:]}")
    problems, out.lost, _ = final_problems(spec, db, [], None)
    out.problems += problems
    with Store(db, read_only=True) as store:
        evaluated = [ind for ind in store.individuals(1) if not ind.cached]
    hanging = [ind for ind in evaluated if _unit(ind.program, 16) < hang_rate]
    timeouts = [ind for ind in evaluated if ind.evaluation.error == f"timeout after {limit:g} s"]
    if {i.id for i in hanging} != {i.id for i in timeouts}:
        out.problems.append(f"{len(hanging)} hanging programs but {len(timeouts)} timeouts recorded")
    out.injected = len(hanging)
    out.survived = sum(i.evaluation.error == f"timeout after {limit:g} s" for i in hanging) if not out.problems else 0
    out.details = {"budget": budget, "timeout_s": limit, "hanging_programs": len(hanging),
                   "run_seconds": round(time.monotonic() - start, 1)}
    return out


# ---------------------------------------------------------------------------------------- a full disk


@contextlib.contextmanager
def small_filesystem(path: str, megabytes: int) -> Iterator[bool]:
    """A tmpfs of `megabytes` mounted at `path` (True), or just the directory where this machine does
    not let us mount one (False)."""
    os.makedirs(path, exist_ok=True)
    mounted = False
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("mount"):
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", path],
                              capture_output=True, text=True)
        mounted = done.returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", path], capture_output=True)


#: What a store needs besides its database file: the write-ahead log, which SQLite lets grow to
#: 1,000 pages (of 4 KiB, plus frame headers and one transaction beyond) before it starts it over,
#: and the 32 KiB index.
WAL_BYTES = 4_200_000

#: A driver whose store connections may use at most MAX_PAGES pages: SQLite then fails writes with
#: SQLITE_FULL ("database or disk is full"), as on a full disk. Used where no tmpfs can be mounted.
_SIMULATED_FULL_DRIVER = """
import sqlite3, sys
pages = int(sys.argv.pop(1))
_connect = sqlite3.connect
def connect(*args, **kwargs):
    db = _connect(*args, **kwargs)
    db.execute(f"PRAGMA max_page_count = {pages}")
    return db
sqlite3.connect = connect
from evolve.cli import main
sys.exit(main(sys.argv[1:]))
"""


def fill_the_disk(spec: RunSpec, rng: random.Random, workdir: str, reference: str) -> Outcome:
    """Run on a store whose disk fills up at a random moment of the run: the run must stop with one
    clear line and an intact store; once space is freed, `evolve resume` must finish it exactly as
    the uninterrupted run (`reference`) did."""
    out = Outcome("disk full")
    share = rng.uniform(0.15, 0.75)  # of the finished store: the disk fills up about that far into the run
    size = os.path.getsize(reference)
    mountpoint = os.path.join(workdir, "small-disk")
    with small_filesystem(mountpoint, megabytes=(size + WAL_BYTES) // 2**20 + 2) as mounted:
        db = os.path.join(mountpoint, "run.db")
        ballast = os.path.join(mountpoint, "ballast")
        if mounted:
            stat = os.statvfs(mountpoint)
            free = WAL_BYTES + int(share * size)
            with open(ballast, "wb") as f:
                f.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free))
            driver = launch([*spec.run_args(), "--db", db], workdir, "disk-full")
        else:
            free = int(share * size)
            pages = max(8, free // 4096)
            command = [sys.executable, "-c", _SIMULATED_FULL_DRIVER, str(pages)]
            driver = launch([*spec.run_args(), "--db", db], workdir, "disk-full", command)
        out.injected = 1
        started = time.monotonic()
        rc = wait_or_kill(driver)
        until_fault = round(time.monotonic() - started, 1)
        left, _ = orphans(driver)
        out.orphans += len(left)
        lines = driver.stderr().strip().splitlines()
        errors = [line for line in lines if not line.startswith("run 1 started")]
        if rc != 2 or len(errors) != 1 or "disk is full" not in errors[0]:
            out.problems.append(f"the full disk ended the run with status {rc} and {len(errors)} lines: {errors[-5:]}")
        at_fault = snapshot(db)
        if at_fault is None:
            out.problems.append("the run was never created")
            return out
        out.problems += store_problems(at_fault)
        if at_fault.state.startswith(("running", "finished")):
            out.problems.append(f"status {at_fault.state!r} after the disk filled up")
        if (check := integrity(db)) != "ok":
            out.problems.append(f"integrity check at the fault: {check}")
        if mounted:
            os.remove(ballast)  # space is freed
        driver, rc, seconds = finish(["resume", "1", "--db", db], workdir, "disk-full-resume")
        left, _ = orphans(driver)
        out.orphans += len(left)
        if rc != 0:
            out.problems.append(f"the resume after freeing space exited with {rc}: {driver.stderr().strip()[-500:]}")
        problems, out.lost, _ = final_problems(spec, db, [at_fault], reference)
        out.problems += problems
        out.survived = int(not out.problems)
        out.details = {
            "filesystem": "tmpfs" if mounted else "simulated (SQLite max_page_count)",
            "free_bytes_at_start": free, "full_at_share_of_store": round(share, 2), "recorded_at_fault": len(at_fault.rows), "evaluated_at_fault": at_fault.evaluated,
            "state_at_fault": at_fault.state, "error_line": errors[0] if errors else None, "budget": spec.budget,
            "run_until_fault_s": until_fault, "resume_s": seconds,
        }
    return out


# ---------------------------------------------------------------------------------------- the suite


#: Driver kills and budgets per kind of run, Ray worker kills and their run's budget, the budget of
#: the run with hanging evaluations. "small" is what tests/test_faults.py runs.
SIZES = {
    "full": {"serial": (20, 4000), "guided": (20, 800), "ray": (20, 1500), "worker_kills": (5, 300), "hang": 80},
    "small": {"serial": (3, 600), "guided": (2, 200), "ray": (1, 200)},
}


def run_suite(size: str = "full", seed: int = 0) -> list[Outcome]:
    sizes = SIZES[size]
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix="evolve-faults-")
    outcomes = []

    def timed(inject, *args) -> None:
        start = time.monotonic()
        outcome = inject(*args)
        outcome.seconds = round(time.monotonic() - start, 1)
        outcomes.append(outcome)

    try:
        with adopting_orphans():
            serial = serial_run(sizes["serial"][1])
            serial_reference = reference_run(serial, workdir)
            timed(kill_drivers, serial, sizes["serial"][0], rng, workdir, serial_reference)
            timed(fill_the_disk, serial, rng, workdir, serial_reference)
            guided = guided_run(sizes["guided"][1])
            guided_reference = reference_run(guided, workdir) if size == "full" else None
            timed(kill_drivers, guided, sizes["guided"][0], rng, workdir, guided_reference)
            timed(kill_drivers, ray_run(sizes["ray"][1]), sizes["ray"][0], rng, workdir)
            if "worker_kills" in sizes:
                timed(kill_ray_workers, *sizes["worker_kills"], rng, workdir)
            if "hang" in sizes:
                timed(hang_past_time_limit, sizes["hang"], workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="the reduced size tests/test_faults.py runs")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    args = parser.parse_args()
    start, load = time.monotonic(), os.getloadavg()[1]
    outcomes = run_suite("small" if args.small else "full", args.seed)
    rows = [[o.fault, o.injected, o.survived, o.lost, o.orphans, o.seconds, "; ".join(o.problems)[:80] or "ok"]
            for o in outcomes]
    totals = {key: sum(getattr(o, key) for o in outcomes) for key in ("injected", "survived", "lost", "orphans")}
    seconds = round(time.monotonic() - start)
    rows.append(["total", totals["injected"], totals["survived"], totals["lost"], totals["orphans"], seconds, ""])
    print(table(rows, ["fault", "injected", "survived", "evaluations lost", "orphans", "seconds", "problems"]))
    print(f"faults injected: {totals['injected']}, survived: {totals['survived']}, evaluations lost: {totals['lost']}, "
          f"orphaned processes: {totals['orphans']} ({seconds} s; load average {load:.1f} before, "
          f"{os.getloadavg()[1]:.1f} after)")
    if not args.small:
        save_json("faults", {
            "seed": args.seed, "seconds": seconds, "load_average_5min": [round(load, 2), round(os.getloadavg()[1], 2)],
            **{f"total_{k}": v for k, v in totals.items()}, "faults": [dataclasses.asdict(o) for o in outcomes],
        })
    sys.exit(0 if all(o.ok for o in outcomes) else 1)


if __name__ == "__main__":
    main()
