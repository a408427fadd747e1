"""The store's schema version and migrations: a store written by an older evolve opens (and keeps its
runs resumable), one from a newer evolve or another program is refused and left untouched, and what
the engine commits together (rows and random state) is committed together or not at all."""

import json
import logging
import math
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

from evolve.cli import main
from evolve.engine import resume_run
from evolve.errors import StoreError
from evolve.population import Individual
from evolve.program import Program
from evolve.space import Evaluation
from evolve.store import SCHEMA_VERSION, Pending, RunConfig, Store

FIXTURE = Path(__file__).parent / "fixtures" / "store_v1.db"  # made by fixtures/make_store_v1.py


@pytest.fixture
def v1(tmp_path) -> str:
    """A copy of the version-1 fixture (three runs: finished, killed mid-run, PAM-RT with a checkpoint)."""
    path = tmp_path / "v1.db"
    shutil.copyfile(FIXTURE, path)
    return str(path)


def meta(path: str) -> dict[str, str]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT key, value FROM evolve_meta"))


def schema_of(path: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name").fetchall()


def evolve_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evolve.cli", *args], capture_output=True, text=True, timeout=300)


# ---------------------------------------------------------------------------- version 1 stores


def test_version_1_fixture_is_what_it_claims():
    """Guards the fixture itself: no marker, the three runs the other tests rely on, one file."""
    with sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {"runs", "individuals", "pending", "checkpoints", "sqlite_sequence"}
        assert db.execute("SELECT id, status FROM runs ORDER BY id").fetchall() == [
            (1, "finished"), (2, "running"), (3, "finished")
        ]
        assert db.execute("SELECT COUNT(*) FROM pending WHERE run_id = 2").fetchone()[0] > 0
        assert db.execute("SELECT name FROM checkpoints WHERE run_id = 3").fetchall() == [("predictor",)]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert FIXTURE.stat().st_size < 1_000_000


def test_version_1_store_is_migrated_to_the_schema_of_a_new_store(v1, tmp_path, caplog):
    counts_before = _row_counts(v1)
    with caplog.at_level(logging.INFO, logger="evolve.store"):
        with Store(v1) as store:
            assert [r.status for r in store.runs()] == ["finished", "running", "finished"]
            assert store.rng_state(1) is None  # recorded before the state was kept
    assert f"migrated from schema version 1 to {SCHEMA_VERSION}" in caplog.text
    assert meta(v1)["schema"] == "evolve.store" and meta(v1)["version"] == str(SCHEMA_VERSION)
    assert _row_counts(v1) == counts_before  # nothing lost

    Store(str(tmp_path / "new.db")).close()
    assert schema_of(v1) == schema_of(str(tmp_path / "new.db"))


def test_migration_is_idempotent(v1, caplog):
    Store(v1).close()
    first = (meta(v1), schema_of(v1), _row_counts(v1))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="evolve.store"):
        Store(v1).close()
    assert "migrated" not in caplog.text
    assert (meta(v1), schema_of(v1), _row_counts(v1)) == first


def test_cli_reads_a_version_1_store(v1):
    """The first command to open the old file migrates it; every reading command works on it."""
    runs = evolve_cli("runs", "--db", v1)
    assert runs.returncode == 0 and "Traceback" not in runs.stderr, runs.stderr
    lines = runs.stdout.splitlines()
    assert len(lines) == 4 and "pam-rt" in lines[3] and "stopped (driver gone)" in lines[2]

    show = evolve_cli("show", "2", "--db", v1)
    assert show.returncode == 0 and "Traceback" not in show.stderr, show.stderr
    assert "status: stopped (driver gone)" in show.stdout and "pending 4" in show.stdout

    top = evolve_cli("top", "3", "-n", "3", "--db", v1)
    assert top.returncode == 0 and "Traceback" not in top.stderr, top.stderr
    best_id = int(top.stdout.splitlines()[1].split()[0])

    export = evolve_cli("export", "3", str(best_id), "--format", "json", "--db", v1)
    assert export.returncode == 0 and "Traceback" not in export.stderr, export.stderr
    with Store(v1) as store:
        assert Program.from_json(export.stdout).digest == store.individual(3, best_id).program.digest
    assert meta(v1)["version"] == str(SCHEMA_VERSION)


def test_run_killed_under_version_1_resumes_to_exactly_its_budget(v1):
    with Store(v1) as store:
        pending_at_kill = {p.ticket for p in store.pending(2)}
        budget = store.run(2).config.budget
        assert pending_at_kill and store.counts(2)[0] < budget

        assert resume_run(store, 2).execute() == "budget"

        evaluated, cached = store.counts(2)
        assert evaluated == budget
        rows = store.db.execute("SELECT id, ticket FROM individuals WHERE run_id = 2 ORDER BY id").fetchall()
        ids, tickets = [r[0] for r in rows], [r[1] for r in rows]
        assert ids == list(range(1, evaluated + cached + 1))
        assert len(set(tickets)) == len(tickets)
        assert pending_at_kill <= set(tickets)
        assert store.pending(2) == []
        assert store.run(2).status == "finished"
        assert store.rng_state(2) is not None  # the resumed engine keeps its stream from now on


def test_version_1_fitness_blobs_are_read_as_numbers(v1):
    """Version 1 stored a numpy float32 fitness by its bytes; the migration decodes it."""
    with sqlite3.connect(v1) as db:
        db.execute("UPDATE individuals SET fitness = ? WHERE run_id = 1 AND id = 1", (np.float32(0.375),))
        db.execute("UPDATE individuals SET fitness = ? WHERE run_id = 1 AND id = 2", (b"\x01\x02\x03",))
        assert db.execute("SELECT typeof(fitness) FROM individuals WHERE run_id = 1 AND id = 1").fetchone() == ("blob",)
    with Store(v1) as store:
        assert store.individual(1, 1).fitness == 0.375
        broken = store.individual(1, 2)
        assert broken.fitness == -math.inf and "unreadable 3-byte" in broken.evaluation.error
        assert store.db.execute("SELECT COUNT(*) FROM individuals WHERE typeof(fitness) = 'blob'").fetchone() == (0,)


# ---------------------------------------------------------------------------- what is not ours


def _foreign_runs_table(db):
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, athlete TEXT, km REAL)")
    db.execute("INSERT INTO runs (athlete, km) VALUES ('ada', 42.195)")


def _version_1_tables_with_one_column_changed(db):
    with sqlite3.connect(f"file:{FIXTURE}?mode=ro", uri=True) as fixture:
        rows = fixture.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'sqlite_sequence'")
        statements = [sql for (sql,) in rows]
    for statement in statements:
        db.execute(statement.replace("seconds REAL NOT NULL", "duration REAL NOT NULL"))


def _another_programs_meta(db):
    db.execute("CREATE TABLE evolve_meta (key TEXT PRIMARY KEY, value TEXT)")
    db.execute("INSERT INTO evolve_meta VALUES ('schema', 'somebody.else'), ('version', '1')")
    db.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")


@pytest.mark.parametrize("make", [_foreign_runs_table, _version_1_tables_with_one_column_changed, _another_programs_meta])
def test_another_programs_database_is_refused_and_left_as_it_is(tmp_path, make):
    path = tmp_path / "theirs.db"
    with sqlite3.connect(path) as db:
        make(db)
    before = path.read_bytes()
    with pytest.raises(StoreError, match="is not an evolve store: an SQLite database of another program"):
        Store(str(path))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["theirs.db"]


def test_a_file_that_is_not_sqlite_is_refused(tmp_path, capsys):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(StoreError, match=r"not an evolve store \(not an SQLite database\)"):
        Store(str(path))
    assert main(["runs", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an SQLite database" in err
    assert path.read_text() == "these are my notes, not a database\n"


def test_a_store_from_a_newer_evolve_is_refused(tmp_path, capsys):
    path = tmp_path / "newer.db"
    Store(str(path)).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE evolve_meta SET value = ? WHERE key = 'version'", (str(SCHEMA_VERSION + 1),))
        db.execute("UPDATE evolve_meta SET value = 'evolve 9.0.0' WHERE key = 'written_by'")
    before = path.read_bytes()
    with pytest.raises(StoreError, match=r"written by a newer evolve \(evolve 9\.0\.0, .*: upgrade evolve"):
        Store(str(path))
    assert main(["runs", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "upgrade evolve" in err
    assert path.read_bytes() == before


def test_an_empty_file_becomes_a_new_store(tmp_path):
    path = tmp_path / "empty.db"
    path.touch()
    with Store(str(path)) as store:
        assert store.runs() == []
    assert meta(str(path))["version"] == str(SCHEMA_VERSION)


# ---------------------------------------------------------------------------- the random generator's state


def _store_with_run(tmp_path) -> tuple[Store, int]:
    store = Store(str(tmp_path / "run.db"))
    return store, store.create_run(RunConfig("sleep")).id


def _program() -> Program:
    return Program.from_json(json.dumps({
        "format": "evolve.program", "version": 1, "space": "symbolic-regression",
        "nodes": [{"op": "input"}, {"op": "sin", "inputs": [0]}], "outputs": [1],
    }))


def _entry(individual_id: int, ticket: int, fitness=0.5, error=None, cached=False, metrics=None):
    evaluation = Evaluation(fitness, metrics or {}, error)
    return Individual(individual_id, _program(), evaluation, None, cached, {}, 0.01), ticket, None


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.MT19937])
def test_rng_state_round_trip(tmp_path, bit_generator):
    store, run_id = _store_with_run(tmp_path)
    rng = np.random.Generator(bit_generator(7))
    rng.random(5)
    store.add_pending(run_id, [Pending(1, _program(), None, None, {})], rng_state=rng.bit_generator.state)
    resumed = np.random.Generator(bit_generator())
    with Store(store.path) as reopened:
        resumed.bit_generator.state = reopened.rng_state(run_id)
    assert np.array_equal(resumed.random(10), rng.random(10))

    rng.random(3)
    store.record(run_id, [_entry(1, 1)], rng_state=rng.bit_generator.state)
    resumed.bit_generator.state = store.rng_state(run_id)
    assert np.array_equal(resumed.integers(0, 1 << 30, 10), rng.integers(0, 1 << 30, 10))


def test_a_failed_write_commits_neither_rows_nor_rng_state(tmp_path):
    store, run_id = _store_with_run(tmp_path)
    store.add_pending(run_id, [Pending(1, _program(), None, None, {})], rng_state={"at": "pending 1"})
    store.record(run_id, [_entry(1, 1)], rng_state={"at": "record 1"})

    with pytest.raises(sqlite3.IntegrityError):  # ticket 2 twice: the first is not written either
        store.add_pending(run_id, [Pending(2, _program(), None, None, {}), Pending(2, _program(), None, None, {})],
                          rng_state={"at": "never"})
    assert store.pending(run_id) == [] and store.rng_state(run_id) == {"at": "record 1"}

    store.add_pending(run_id, [Pending(2, _program(), None, None, {})], rng_state={"at": "pending 2"})
    with pytest.raises(sqlite3.IntegrityError):  # individual 1 exists: neither is recorded, ticket 2 stays pending
        store.record(run_id, [_entry(2, 2), _entry(1, 3)], rng_state={"at": "never"})
    assert store.counts(run_id) == (1, 0)
    assert [p.ticket for p in store.pending(run_id)] == [2]
    assert store.rng_state(run_id) == {"at": "pending 2"}

    with pytest.raises(TypeError):  # a state that cannot be stored fails before anything is written
        store.record(run_id, [_entry(2, 2)], rng_state={"at": object()})
    assert store.counts(run_id) == (1, 0) and store.rng_state(run_id) == {"at": "pending 2"}


# ---------------------------------------------------------------------------- values and failures


def test_failure_reasons_most_common_first(tmp_path):
    store, run_id = _store_with_run(tmp_path)
    def failed(reason):
        return -math.inf, reason

    outcomes = [(0.5, None), failed("timeout"), failed("division by zero"), (0.7, None), failed("division by zero"),
                failed("division by zero"), failed("exception: boom")]
    entries = [_entry(i, i, fitness, error) for i, (fitness, error) in enumerate(outcomes, start=1)]
    cached = [_entry(8, 8, -math.inf, "timeout", cached=True), _entry(9, 9, -math.inf, "timeout", cached=True)]
    store.record(run_id, entries + cached)
    assert store.failure_reasons(run_id) == [("division by zero", 3), ("exception: boom", 1), ("timeout", 1)]
    assert store.failure_reasons(store.create_run(RunConfig("sleep")).id) == []


def test_numpy_and_jax_values_are_stored_as_plain_numbers(tmp_path):
    store, run_id = _store_with_run(tmp_path)
    metrics = {"loss": np.float32(0.25), "curve": np.arange(3), "steps": np.int64(7), "jax": jnp.float32(1.5),
               "jax_curve": jnp.array([0.5, 1.0])}
    evaluation = Evaluation(np.float32(0.75), metrics, None)
    proposal = {"score": np.float64(0.5)}
    individual = Individual(np.int64(1), _program(), evaluation, None, np.bool_(False), proposal, np.float32(0.1))
    store.record(run_id, [(individual, np.int64(1), None)])
    jax_fitness = Evaluation(jnp.float32(0.875), {}, None)
    store.record(run_id, [(Individual(2, _program(), jax_fitness, np.int64(1), False, {}, 0.0), 2, None)])

    types = store.db.execute(
        "SELECT typeof(id), typeof(ticket), typeof(fitness), typeof(parent) FROM individuals ORDER BY id"
    ).fetchall()
    assert types == [("integer", "integer", "real", "null"), ("integer", "integer", "real", "integer")]
    first, second = store.individuals(run_id)
    assert type(first.fitness) is float and first.fitness == 0.75 and second.fitness == 0.875
    assert first.evaluation.metrics == {"loss": 0.25, "curve": [0, 1, 2], "steps": 7, "jax": 1.5, "jax_curve": [0.5, 1.0]}
    assert first.proposal == {"score": 0.5} and second.parent == 1


# ---------------------------------------------------------------------------- configs across versions


def test_config_from_another_version_reads_with_defaults(caplog):
    written_by_newer = json.dumps({"space": "sleep", "budget": 50, "lease_seconds": 30, "tags": ["x"]})
    with caplog.at_level(logging.DEBUG, logger="evolve.store"):
        config = RunConfig.from_json(written_by_newer)
    assert config == RunConfig("sleep", budget=50)
    assert "ignoring keys this evolve does not know: lease_seconds, tags" in caplog.text
    with pytest.raises(StoreError, match="names no search space"):
        RunConfig.from_json(json.dumps({"budget": 50}))


def test_a_stored_config_with_unknown_and_missing_keys_opens(v1):
    with sqlite3.connect(v1) as db:
        config = json.loads(db.execute("SELECT config FROM runs WHERE id = 1").fetchone()[0])
        del config["seed"], config["stop_when_solved"]
        config["written_by_the_future"] = True
        db.execute("UPDATE runs SET config = ? WHERE id = 1", (json.dumps(config),))
    with Store(v1) as store:
        run = store.run(1)
    assert run.config.seed == 0 and run.config.stop_when_solved is False and run.config.budget == 150


def _row_counts(path: str) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = ("runs", "individuals", "pending", "checkpoints")
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables}


class _CtrlCAfterBegin:
    """A connection that raises KeyboardInterrupt right after its first BEGIN ran, as a Ctrl-C
    whose handler runs as soon as sqlite3 returns."""

    def __init__(self, db: sqlite3.Connection):
        self.db, self.armed = db, True

    def execute(self, sql, *args):
        result = self.db.execute(sql, *args)
        if self.armed and sql.startswith("BEGIN"):
            self.armed = False
            raise KeyboardInterrupt
        return result

    def __getattr__(self, name):
        return getattr(self.db, name)


def test_a_ctrl_c_just_after_begin_leaves_no_transaction_open(tmp_path):
    """Else the run's final status, written next, would stay in that transaction and be lost."""
    path = str(tmp_path / "s.db")
    store = Store(path)
    run = store.create_run(RunConfig("sleep"))
    real = store.db
    store.db = _CtrlCAfterBegin(real)
    with pytest.raises(KeyboardInterrupt):
        store.add_pending(run.id, [Pending(1, _program(), None, None, {})])
    store.db = real
    assert not real.in_transaction
    store.set_status(run.id, "interrupted", "interrupted")
    with Store(path, read_only=True) as reader:
        assert reader.run(run.id).status == "interrupted" and reader.pending(run.id) == []


@pytest.mark.slow  # waits for the driver's first heartbeat (10 s)
def test_readers_never_take_the_write_ahead_log_from_a_running_driver(tmp_path):
    """A reader's connection, closing, deletes the store's log when it believes itself the last one;
    the driver's own locks must say otherwise even after its heartbeat thread reopened the store."""
    import signal

    from watch import wait_until_recorded

    db = str(tmp_path / "live.db")
    proc = subprocess.Popen([sys.executable, "-m", "evolve.cli", "run", "sleep", "--space-opt", "seconds=0.002",
                             "--budget", "1000000", "--workers", "4", "--db", db],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_recorded(proc, db, 50)
        time.sleep(11)  # past the first heartbeat, a second connection of the driver's process
        readers = ("import os, sys, time\nfrom evolve.store import Store\n"
                   "for _ in range(50):\n"
                   "    with Store(sys.argv[1], read_only=True) as reader:\n"
                   "        assert reader.run(1).state == 'running'\n"
                   "    assert os.path.exists(sys.argv[1] + '-wal'), 'the log is gone'\n"
                   "    time.sleep(0.02)\n")
        done = subprocess.run([sys.executable, "-c", readers, db], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-500:]
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Store(db, read_only=True) as reader:
        assert reader.run(1).state == "interrupted" and reader.counts(1)[0] > 50
