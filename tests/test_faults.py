"""The fault-injection suite (benchmarks/faults.py) at a size CI affords: SIGKILL of the driver of a
serial, a guided and a Ray run, each followed by `evolve resume`, and a disk that fills up mid-run.
Every time the store must end with exactly the budget, ids 1..N, no ticket twice, no pending row,
the population the store implies (the serial run: exactly the uninterrupted run), a truthful status,
and no orphaned process; plus the guard that ends the Ray a driver started when that driver is killed."""

import os
import random
import signal
import subprocess
import sys
import time

import psutil
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks"))
import faults  # noqa: E402

SIZES = faults.SIZES["small"]

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="orphans are counted by adopting them (prctl PR_SET_CHILD_SUBREAPER): Linux only")]


@pytest.fixture(scope="module", autouse=True)
def adopting_orphans():
    """This process adopts what a killed driver leaves behind, so every orphan is counted."""
    with faults.adopting_orphans():
        yield


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("faults"))


@pytest.fixture(scope="module")
def serial(workdir):
    """The serial run and its uninterrupted reference."""
    spec = faults.serial_run(SIZES["serial"][1])
    return spec, faults.reference_run(spec, workdir)


def assert_whole(outcome: faults.Outcome, injected: int) -> None:
    assert outcome.problems == [], outcome.details
    assert (outcome.injected, outcome.survived, outcome.lost, outcome.orphans) == (injected, injected, 0, 0), outcome


def test_serial_driver_killed_at_random_moments_resumes_exactly(serial, workdir):
    spec, reference = serial
    outcome = faults.kill_drivers(spec, SIZES["serial"][0], random.Random(1), workdir, reference)
    assert_whole(outcome, SIZES["serial"][0])
    assert outcome.details["exact_resume_checked"]


def test_a_full_disk_stops_the_run_with_one_line_and_resume_finishes_it(serial, workdir):
    spec, reference = serial
    outcome = faults.fill_the_disk(spec, random.Random(2), workdir, reference)
    assert_whole(outcome, 1)
    assert outcome.details["error_line"].startswith("evolve: error: cannot write to store")
    assert 0 < outcome.details["evaluated_at_fault"] < spec.budget


def test_guided_driver_killed_at_random_moments_resumes(workdir):
    outcome = faults.kill_drivers(faults.guided_run(SIZES["guided"][1]), SIZES["guided"][0], random.Random(3), workdir)
    assert_whole(outcome, SIZES["guided"][0])


def test_a_ray_driver_killed_mid_run_leaves_no_process_behind(workdir):
    """Killed after it took the run, so its own Ray is up: the raylet's agents must not outlive it."""
    outcome = faults.kill_drivers(faults.ray_run(SIZES["ray"][1]), SIZES["ray"][0], random.Random(4), workdir,
                                  phases={"running": 1.0})
    assert_whole(outcome, SIZES["ray"][0])
    assert outcome.details["moments"]["start-up"] == 0


GUARDED_DRIVER = """
import subprocess, sys, time
from evolve.ray_reaper import guarded
bystander = subprocess.Popen(["sleep", "600"])
with guarded("/nonexistent") as guard:  # like Ray's agents, these ignore SIGTERM
    subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 600; true"])
print(bystander.pid, guard.mark, flush=True)
time.sleep(600)
"""


def test_what_a_driver_starts_under_guard_ends_with_it_even_on_sigkill():
    """The mechanism behind the Ray case, made certain: processes started inside `guarded()` that
    ignore SIGTERM end within seconds of their driver's SIGKILL; one started outside does not."""
    driver = subprocess.Popen([sys.executable, "-c", GUARDED_DRIVER], stdout=subprocess.PIPE, text=True)
    bystander, mark = driver.stdout.readline().split()
    bystander = int(bystander)
    try:
        deadline = time.monotonic() + 15
        while len(_marked(mark)) < 2 and time.monotonic() < deadline:  # the shell and its sleep
            time.sleep(0.05)
        assert len(_marked(mark)) == 2
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 15
        while _marked(mark) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _marked(mark) == []
        assert psutil.Process(bystander).status() != psutil.STATUS_ZOMBIE
    finally:
        for p in [*_marked(mark), psutil.Process(bystander)]:
            p.kill()


def _marked(mark: str) -> list:
    from evolve.ray_reaper import MARK

    out = []
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.environ().get(MARK) == mark:
                out.append(p)
        except psutil.Error:
            continue
    return out
