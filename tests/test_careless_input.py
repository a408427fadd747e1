"""Issue 14's careless user: every mistake found ends in one clear line and status 2 (or does the
right thing), nothing is left half done, and absurd values are refused before a run exists.
Grouped by cause: numbers out of range, absurd options, files that cannot be read or written,
other programs' files, a user's data, and Ctrl-C."""

import contextlib
import gc
import importlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from watch import wait_until_recorded

from evolve.cli import main
from evolve.interrupts import Interrupts
from evolve.store import Store

SR = ["run", "symbolic-regression"]
PROGRAM = {"format": "evolve.program", "version": 1, "space": "symbolic-regression",
           "nodes": [{"op": "input"}, {"op": "const", "value": 1.5}, {"op": "add", "inputs": [0, 1]}], "outputs": [2]}


def one_line(argv: list[str], capsys) -> str:
    """Run `evolve ARGV` in this process; it must fail with status 2 and one line. Returns the line."""
    try:
        status = main(argv)
    except SystemExit as e:  # argparse's usage errors
        status = e.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("evolve: error: "), (argv, status, err)
    return lines[0]


def runs_in(db) -> int:
    if not os.path.exists(db):
        return 0
    with Store(str(db), read_only=True) as store:
        return len(store.runs())


#: `python -m evolve.cli`, with Ctrl-C's usual disposition even when the tests run as a background job
#: (a shell starts those with SIGINT ignored, and Python keeps it so). Set in the child itself: a
#: preexec_fn would run Python in a forked copy of this process, whose JAX threads can deadlock it.
EVOLVE_WITH_CTRL_C = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler);"
                      " runpy.run_module('evolve.cli', run_name='__main__', alter_sys=True)")


def ctrl_c_as_in_a_terminal() -> None:
    """Python's own SIGINT and SIGTERM handling, as in a terminal, even when the tests run as a
    background job (SIGINT ignored), which Interrupts leaves alone. The caller restores the old ones."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def evolve_process(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", EVOLVE_WITH_CTRL_C, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def assert_interrupted(proc: subprocess.Popen) -> str:
    _, err = proc.communicate(timeout=60)
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("run ")]
    assert proc.returncode == 130 and "Traceback" not in err and len(lines) == 1, (proc.returncode, err)
    assert lines[0].startswith("evolve: interrupted")
    return lines[0]



# ---------------------------------------------------------------------------- numbers out of range


@pytest.mark.parametrize("argv, message", [
    (SR + ["--seed", "-1"], "argument --seed: must be at least 0, got -1"),
    (SR + ["--seed", "9" * 5000], "argument --seed: invalid int value: '9999999999"),
    (SR + ["--workers", "0"], "argument --workers: must be from 1 to 10000, got 0"),
    (SR + ["--workers", "1000000"], "argument --workers: must be from 1 to 10000"),
    (SR + ["--budget", "0"], "budget must be at least 1"),
    (["show", "1", "--top", "-5"], "argument --top: must be from 0 to"),
    (["top", "1", "-n", "-1"], "argument -n: must be from 0 to"),
    (["show", "0"], "argument run: must be from 1 to"),
    (["resume", str(2**63)], "argument run: must be from 1 to 9223372036854775807"),
    (["export", "1", "0"], "argument id: must be from 1 to"),
    (["runs", "a\nb\rc\x85d"], "unrecognized arguments: a\\x0ab\\x0dc\\x85d"),  # still one line
])
def test_numbers_out_of_range_are_one_line(argv, message, tmp_path, capsys):
    db = tmp_path / "e.db"
    assert message in one_line(argv + ["--db", str(db)], capsys)
    assert runs_in(db) == 0


# ---------------------------------------------------------------------------- absurd options


@pytest.mark.parametrize("argv, message", [
    (SR + ["--space-opt", "max_nodes=1000000000"], "max_nodes must be a whole number from 2 to 10000, got 1000000000"),
    (SR + ["--space-opt", "data_seed=-1"], "data_seed must be a whole number of at least 0, got -1"),
    (SR + ["--strategy-opt", "population_size=0"], "population_size must be between 1 and 1000000, got 0"),
    (SR + ["--strategy-opt", "population_size=5000000"], "population_size must be between 1 and 1000000"),
    (SR + ["--strategy-opt", "population_size=3"], "tournament_size must be between 1 and population_size (3), got 5"),
    (SR + ["--strategy", "pam-rt", "--predictor", "oracle", "--strategy-opt", "tournaments=1000000",
           "--strategy-opt", "threshold=0.999"], "tournaments must be between 1 and 1024, got 1000000"),
    (SR + ["--strategy", "pam-rt", "--predictor", "oracle", "--strategy-opt", "tournaments=512"],
     "chain_length x tournaments, the children tried per proposal, must be at most 1024, got 4 x 512"),
    (SR + ["--strategy", "predictor-filter", "--predictor", "oracle", "--strategy-opt", "candidates=1000"],
     "candidates must be between 2 and 64, got 1000"),
    (["run", "optimizers", "--space-opt", "steps=100000000"],
     "steps x seeds x learning rates, the training steps of each candidate per task, must be at most 50000"),
    (["run", "optimizers", "--space-opt", "max_nodes=1000000"], "max_nodes must be an integer from"),
    (["run", "sleep", "--space-opt", "max_nodes=0"], "max_nodes must be at least 2 (its 1 inputs and one node"),
    (SR + ["--space-opt", "max_nodes=" + "9" * 5000], "--space-opt max_nodes: the value has 5000 characters"),
    (SR + ["--strategy-opt", "population_size=" + "[" * 5000], "--strategy-opt population_size: the value is nested too deeply"),
])
def test_absurd_values_are_refused_before_a_run_exists(argv, message, tmp_path, capsys):
    db = tmp_path / "e.db"
    line = one_line(argv + ["--db", str(db)], capsys)
    assert message in line, line
    assert runs_in(db) == 0
    if db.exists():  # opened before the strategy was checked: empty, nothing for `evolve resume` to repeat
        assert "no run 1" in one_line(["resume", "1", "--db", str(db)], capsys)


# ---------------------------------------------------------------------------- files that cannot be read or written


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """A finished symbolic-regression run; its store's path."""
    db = tmp_path_factory.mktemp("small") / "e.db"
    assert main(SR + ["--budget", "30", "--db", str(db)]) == 0
    return db


def test_files_that_cannot_be_written_or_read_are_one_line(small_run, tmp_path, capsys):
    db = str(small_run)
    (tmp_path / "adir").mkdir()
    assert "cannot write" in one_line(["export", "1", "1", "-o", str(tmp_path / "missing" / "f.py"), "--db", db], capsys)
    assert "Is a directory" in one_line(["export", "1", "1", "-o", str(tmp_path / "adir"), "--db", db], capsys)

    text = json.dumps(PROGRAM)
    files = {
        "latin1.json": text.replace('"input"}', '"input", "note": "caf\u00e9"}', 1).encode("latin-1"),
        "digits400.json": text.replace("1.5", "1" * 400).encode(),
        "digits5000.json": text.replace("1.5", "1" * 5000).encode(),
        "nested.json": b"[" * 100_000,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    expected = {
        "latin1.json": "latin1.json is not UTF-8 text (byte 0xe9 at offset",
        "digits400.json": "is a whole number of 400 digits, too large for a constant",
        "digits5000.json": "program has a number of 5000 digits",
        "nested.json": "it is nested too deeply",
        "adir": "cannot read",
        "missing.json": "cannot read",
    }
    for name, message in expected.items():
        argv = ["evaluate", "symbolic-regression", str(tmp_path / name), "--problem", "nguyen-1"]
        assert message in one_line(argv, capsys), name
    assert "no store at" in one_line(["resume", "1", "--db", str(tmp_path / "typo.db")], capsys)
    assert not (tmp_path / "typo.db").exists()


@pytest.mark.parametrize("command", [SR + ["--budget", "5"], ["runs"], ["show", "1"]])
def test_another_programs_sqlite_file_is_refused_and_left_as_it_was(command, tmp_path, capsys):
    path = tmp_path / "theirs.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)")
        db.execute("INSERT INTO runs (name) VALUES ('mine')")
        db.commit()
    before = path.read_bytes()
    assert "is not an evolve store" in one_line(command + ["--db", str(path)], capsys)
    assert path.read_bytes() == before and sorted(os.listdir(tmp_path)) == ["theirs.db"]


# ---------------------------------------------------------------------------- a user's data


def write_csv(path, header, rows, delimiter=",", encoding="utf-8"):
    lines = [delimiter.join(header)] + [delimiter.join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return str(path)


def data_rows(n=20, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    return [[float(u), float(v), float(u * v + u)] for u, v in zip(a, b)]


@pytest.mark.parametrize("header, change, message", [
    (["a", "b", "y"], (3, 2, "nan"), "row 5, column 'y' is nan; every value must be a finite number"),
    (["a", "b", "y"], (3, 2, "inf"), "row 5, column 'y' is inf"),
    (["a", "b", "y"], (0, 2, "1e300"), "row 2, column 'y' is 1e+300; every value must be a finite number within float32's range"),
    (["a", "b", "y"], (6, 0, "-inf"), "row 8, column 'a' is -inf"),
    (["a", "b", "y"], (6, 1, "nan"), "row 8, column 'b' is nan"),
    (["x", "x", "y"], None, "column 'x' appears 2 times; column names must differ"),
    (["a", "y", "y"], None, "column 'y' appears 2 times"),
    (["lambda", "b", "y"], None, "column 'lambda' is a Python keyword; rename the column"),
    (["sin", "b", "y"], None, "column 'sin' is the name of an operator; rename the column"),
    (["np", "b", "y"], None, "column 'np' is a name the exported Python code uses"),
    (["a b", "c", "y"], None, "column name 'a b' must be an identifier"),
])
def test_bad_data_is_refused_naming_the_file_row_and_column(header, change, message, tmp_path, capsys):
    rows = [[str(v) for v in row] for row in data_rows()]
    if change is not None:
        row, col, value = change
        rows[row][col] = value
    path = write_csv(tmp_path / "data.csv", header, rows)
    line = one_line(SR + ["--problem", path, "--db", str(tmp_path / "e.db")], capsys)
    assert path in line and message in line, line


def test_data_files_that_are_not_csv_files(tmp_path, capsys):
    (tmp_path / "dir.csv").mkdir()
    assert "dir.csv is a directory" in one_line(SR + ["--problem", str(tmp_path / "dir.csv")], capsys)
    many = write_csv(tmp_path / "wide.csv", [f"x{i}" for i in range(40)] + ["y"],
                     [[float(i + j) for j in range(41)] for i in range(5)])
    line = one_line(SR + ["--problem", many, "--space-opt", "max_nodes=32"], capsys)
    assert "has 40 input columns, so max_nodes (now 32) must be at least 41" in line
    assert "pass --space-opt max_nodes=80" in line


@pytest.mark.parametrize("name, delimiter, encoding", [
    ("excel.csv", ",", "utf-8-sig"),  # Excel's byte order mark
    ("europe.csv", ";", "utf-8"),
    ("tabs.tsv", "\t", "utf-8"),
    ("DATA.CSV", ",", "utf-8"),
    ("data.txt", ",", "utf-8"),
])
def test_data_in_the_forms_users_save_it_is_read(name, delimiter, encoding, tmp_path, capsys):
    rows = data_rows()
    path = write_csv(tmp_path / name, ["a", "b", "y"], rows, delimiter, encoding)
    db = str(tmp_path / "e.db")
    assert main(SR + ["--problem", path, "--budget", "20", "--db", db]) == 0
    capsys.readouterr()
    with Store(db, read_only=True) as store:
        data = store.run(1).config.space_options["data"]
    assert data == {"columns": ["a", "b", "y"], "rows": rows}


def test_the_data_stays_with_the_run(tmp_path, capsys, monkeypatch):
    """A run on a CSV file is shown, exported and resumed on the data it was made on: from another
    directory, after the file moved, and after it was edited (no fitness from the new data)."""
    project = tmp_path / "project"
    project.mkdir()
    rows = data_rows(30)
    write_csv(project / "data.csv", ["a", "b", "y"], rows)
    db = str(tmp_path / "e.db")
    monkeypatch.chdir(project)
    proc = evolve_process(*SR, "--problem", "data.csv", "--budget", "100000", "--workers", "1", "--db", db)
    wait_until_recorded(proc, db, 60)
    proc.send_signal(signal.SIGINT)
    assert_interrupted(proc)

    # the file moves away and the user works from elsewhere
    shutil.move(str(project / "data.csv"), tmp_path / "moved.csv")
    monkeypatch.chdir(tmp_path)
    assert main(["show", "1", "--db", db]) == 0 and "top programs:" in capsys.readouterr().out
    assert main(["top", "1", "-n", "1", "--db", db]) == 0
    best = int(capsys.readouterr().out.splitlines()[1].split()[0])
    assert main(["export", "1", str(best), "--format", "python", "--db", db]) == 0
    namespace = {}
    exec(capsys.readouterr().out, namespace)
    table = np.array(rows)
    assert np.all(np.isfinite(namespace["program"](table[:, 0], table[:, 1])))

    # then it comes back edited; the run goes on with the data it was made on
    edited = [[a, b, 3 * y + 1] for a, b, y in rows]
    write_csv(project / "data.csv", ["a", "b", "y"], edited)
    monkeypatch.chdir(project)
    with sqlite3.connect(db) as raw:  # resume for 40 more evaluations only
        recorded = raw.execute("SELECT COUNT(*) FROM individuals").fetchone()[0]
        raw.execute("UPDATE runs SET config = json_set(config, '$.budget', ?)", (recorded + 40,))
    assert main(["resume", "1", "--db", db]) == 0
    capsys.readouterr()
    original = write_csv(tmp_path / "original.csv", ["a", "b", "y"], rows)
    with Store(db, read_only=True) as store:
        after = [ind for ind in store.individuals(1) if ind.id > recorded and not ind.cached and not ind.evaluation.failed]
    assert after
    program_file = tmp_path / "p.json"
    for individual in after[-3:]:
        program_file.write_text(individual.program.to_json())
        assert main(["evaluate", "symbolic-regression", str(program_file), "--problem", original]) == 0
        fitness = json.loads(capsys.readouterr().out.splitlines()[0])["fitness"]
        assert fitness == pytest.approx(individual.fitness, rel=1e-9)


# ---------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("delay", [0.3, 0.9, 1.6])
def test_ctrl_c_while_evolve_starts_is_one_line(delay, tmp_path):
    """The first second or two is spent importing (JAX, sympy); a Ctrl-C then is handled like any."""
    proc = evolve_process(*SR, "--budget", "100000", "--db", str(tmp_path / "e.db"))
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    assert_interrupted(proc)


@pytest.mark.parametrize("gap", [0.0, 0.02, 0.3])
def test_a_second_ctrl_c_ends_the_process_at_once_and_the_run_resumes(gap, tmp_path):
    db = str(tmp_path / "e.db")
    proc = evolve_process("run", "sleep", "--budget", "100000", "--workers", "4", "--space-opt", "seconds=0.02",
                          "--db", db)
    wait_until_recorded(proc, db, 20)
    proc.send_signal(signal.SIGINT)
    time.sleep(gap)
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    # after the command returned, Python's own exit may meet the second signal: a shell reports 130 too
    assert proc.returncode in (130, -signal.SIGINT) and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.startswith("evolve:")]) <= 1, err
    with Store(db, read_only=True) as store:
        run = store.run(1)
        recorded = sum(store.counts(1))
    assert run.state in ("interrupted", "stopped (driver gone)")
    budget = recorded + 8  # resume for a few more evaluations only
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE runs SET config = json_set(config, '$.budget', ?)", (budget,))
    done = subprocess.run([sys.executable, "-m", "evolve.cli", "resume", "1", "--db", db], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    with Store(db, read_only=True) as store:
        assert store.counts(1)[0] == budget and store.run(1).status == "finished"


def assert_ctrl_c_comes(action) -> None:
    """Run `action`, which sends this process SIGINT where Python could lose it or must not act on
    it at once, inside evolve's Interrupts as in a terminal: a KeyboardInterrupt must come, within
    milliseconds of `action` returning (5 s at most). The process's own handlers come back after."""
    previous = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM), sys.unraisablehook
    try:
        ctrl_c_as_in_a_terminal()
        with Interrupts():
            deadline = time.monotonic() + 5
            with pytest.raises(KeyboardInterrupt):
                action()
                while time.monotonic() < deadline:
                    time.sleep(0.001)
            assert time.monotonic() < deadline
    finally:
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGTERM, previous[1])
        sys.unraisablehook = previous[2]


class _RaisesSigintWhenCollected:
    def __del__(self):
        signal.raise_signal(signal.SIGINT)
        for _ in range(1000):  # the handler runs here, inside __del__
            pass


def _sigint_in_a_gc_callback():
    def callback(phase, info):
        gc.callbacks.remove(callback)
        signal.raise_signal(signal.SIGINT)
        for _ in range(1000):  # the handler runs here, inside the callback
            pass

    gc.callbacks.append(callback)
    gc.collect()


def _sigint_in_del():
    _RaisesSigintWhenCollected()


@pytest.mark.parametrize("land", [_sigint_in_a_gc_callback, _sigint_in_del])
def test_a_ctrl_c_python_would_swallow_is_delivered_again(land, capsys):
    """Python prints and ignores an exception raised in a gc callback (JAX runs one at every
    collection) or a __del__ method: the interrupt comes again once that has returned."""
    assert_ctrl_c_comes(land)
    assert "Exception ignored" not in capsys.readouterr().err


def test_a_ctrl_c_during_an_import_comes_once_the_import_is_over(tmp_path, monkeypatch):
    """A KeyboardInterrupt raised inside a native module's initialisation crashes the process
    (jaxlib's, imported on the first evaluation): an import is never cut in the middle."""
    (tmp_path / "slow_to_import.py").write_text(
        "import signal, time\n"
        "signal.raise_signal(signal.SIGINT)\n"
        "for _ in range(1000):  # the handler runs here, inside the import\n"
        "    pass\n"
        "time.sleep(0.05)\n"
        "COMPLETE = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert_ctrl_c_comes(lambda: importlib.import_module("slow_to_import"))
        assert sys.modules["slow_to_import"].COMPLETE  # the import ran to its end
    finally:
        sys.modules.pop("slow_to_import", None)


class _SlowToStart(threading.Timer):
    """A timer whose thread sends this process SIGINT while `start` still waits for it to run."""

    def _bootstrap(self):  # threading's entry point in the new thread, before `start` may return
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        super()._bootstrap()


def test_a_ctrl_c_while_a_thread_starts_comes_once_start_returns():
    """JAX's first computation starts a 60-second Timer and cancels it only once `start` has
    returned: an interrupt raised inside `start` left it holding the ending process for a minute."""
    timer = _SlowToStart(60, print)
    timer.daemon = True  # were `start` cut, nothing would cancel it
    returned = []

    def start():
        timer.start()
        returned.append(True)

    try:
        assert_ctrl_c_comes(start)
        assert returned
    finally:
        timer.cancel()


def test_an_interrupted_command_ends_without_waiting_for_a_timer(tmp_path):
    """A library's timer still waiting when a command returns from a Ctrl-C does not keep the
    process alive (nor run)."""
    script = ("import threading\n"
              "from evolve.interrupts import Interrupts\n"
              "with Interrupts() as interrupts:\n"
              "    try:\n"
              "        threading.Timer(60, print, args=('the timer ran',)).start()\n"
              "        raise KeyboardInterrupt\n"
              "    except KeyboardInterrupt:\n"
              "        interrupts.handled()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "the timer ran" not in done.stdout, done
    assert done.stderr.strip() == "evolve: interrupted"
