"""The SQLite store: runs, individuals, in-flight proposals and checkpoints (design.md section 8).

One file (default ./evolve.db) in WAL mode. Each evaluation is committed before anything else learns of
it, and every proposal sent to an executor is written as pending first, so a run killed at any moment
(kill -9 included) resumes with no evaluation lost and none repeated: recorded individuals rebuild the
population, pending proposals are submitted again, and the random generator's state, committed in the
same transactions, continues the same stream.

The schema is versioned (design.md 10.6), so a store written today opens tomorrow: `evolve_meta`
names the schema and its version; an older store is migrated when it is opened, in one transaction,
by an ordered list of small steps (version k -> k+1); a store from a newer evolve is refused. A file
that is not an evolve store is refused and never altered, whatever tables it has.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import operator
import os
import sqlite3
import struct
import time
import urllib.parse
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from evolve.errors import StoreError
from evolve.lease import Driver
from evolve.population import Individual
from evolve.program import Program
from evolve.space import Evaluation

log = logging.getLogger(__name__)

SCHEMA_NAME = "evolve.store"
_SQLITE_HEADER = b"SQLite format 3\x00"


# ---------------------------------------------------------------------------- the schema, step by step
#
# Each step takes a store from version k to k + 1 inside the opening transaction; a new file is
# version 0, so a new store and a migrated one are built by the same steps. A step, once released,
# never changes: a change to the schema is a new step at the end.


#: The schema of the first release, as it wrote it: its stores carry no marker and are recognised by
#: exactly these tables and columns (`_is_version_1`).
_VERSION_1 = (
    """CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    config TEXT NOT NULL,            -- RunConfig as JSON
    status TEXT NOT NULL,            -- running | finished | interrupted
    reason TEXT                      -- why it stopped: budget | solved | interrupted | stalled
)""",
    """CREATE TABLE individuals (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    id INTEGER NOT NULL,             -- order of recording within the run: 1, 2, ...
    ticket INTEGER NOT NULL,         -- the proposal it answers
    program TEXT NOT NULL,
    digest TEXT NOT NULL,
    fingerprint TEXT,
    fitness REAL,                    -- NULL when the evaluation failed (fitness -inf)
    metrics TEXT NOT NULL,
    error TEXT,
    parent INTEGER,
    cached INTEGER NOT NULL,         -- 1 when the duplicate cache answered
    proposal TEXT NOT NULL,
    seconds REAL NOT NULL,
    recorded REAL NOT NULL,
    PRIMARY KEY (run_id, id)
)""",
    "CREATE INDEX individuals_fitness ON individuals(run_id, fitness)",
    """CREATE TABLE pending (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    ticket INTEGER NOT NULL,
    program TEXT NOT NULL,
    fingerprint TEXT,
    parent INTEGER,
    proposal TEXT NOT NULL,
    PRIMARY KEY (run_id, ticket)
)""",
    """CREATE TABLE checkpoints (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    at_individual INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
)""",
)


def _create_version_1(db: sqlite3.Connection) -> None:
    for statement in _VERSION_1:
        db.execute(statement)


def _add_marker_and_rng_state(db: sqlite3.Connection) -> None:
    """Version 2: the schema marker; each run's random generator state (JSON, NULL for runs recorded
    before it was kept); fitness values that version 1 stored as BLOBs read back as numbers."""
    db.execute("CREATE TABLE evolve_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.execute("ALTER TABLE runs ADD COLUMN rng_state TEXT")
    _fitness_blobs_to_numbers(db)


def _fitness_blobs_to_numbers(db: sqlite3.Connection) -> None:
    """Version 1 bound a numpy float32 or a JAX scalar fitness by its buffer, as a BLOB that no reader
    can compare. Decode those (4 bytes: float32, 8 bytes: float64, native order, as they were
    written); anything else, or a non-finite value, becomes a failure that says so."""
    rows = db.execute("SELECT rowid, fitness FROM individuals WHERE typeof(fitness) = 'blob'").fetchall()
    for rowid, blob in rows:
        code = {4: "=f", 8: "=d"}.get(len(blob))
        value = struct.unpack(code, blob)[0] if code else math.nan
        if math.isfinite(value):
            db.execute("UPDATE individuals SET fitness = ? WHERE rowid = ?", (value, rowid))
        else:
            reason = f"fitness was stored as an unreadable {len(blob)}-byte value" if code is None else f"fitness is {value}"
            db.execute(
                "UPDATE individuals SET fitness = NULL, error = COALESCE(error, ?) WHERE rowid = ?", (reason, rowid)
            )
    if rows:
        log.info("store migration: %d fitness values stored as BLOBs now read as numbers", len(rows))


def _add_driver_lease(db: sqlite3.Connection) -> None:
    """Version 3: which process drives each run (JSON of evolve.lease.Driver, NULL when none) and when
    it was last heard from, so one process drives a run at a time and a dead driver shows as such."""
    db.execute("ALTER TABLE runs ADD COLUMN driver TEXT")
    db.execute("ALTER TABLE runs ADD COLUMN heartbeat REAL")


#: MIGRATIONS[k] takes a store from version k to version k + 1.
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _create_version_1, _add_marker_and_rng_state, _add_driver_lease,
)
SCHEMA_VERSION = len(MIGRATIONS)


# ---------------------------------------------------------------------------- runs and their configs


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything needed to start a run, and so to resume it in another process."""

    space: str
    space_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    strategy: str = "regularized-evolution"
    strategy_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    predictor: str | None = None
    predictor_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    executor: str = "serial"
    executor_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    workers: int = 16
    budget: int = 1000
    seed: int = 0
    stop_when_solved: bool = False
    #: A second budget in a metric the evaluations report, {name: total}: the run stops once the
    #: evaluated (not cached) individuals' values of that metric add up to the total, as NAS-Bench-101's
    #: searches are budgeted in simulated training seconds ({"training_seconds": 5e6}). Empty: none.
    metric_budget: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        return _to_json(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        """Reads a config written by any evolve, older or newer: keys this one does not know are
        ignored (and logged), keys it misses take their defaults. So a new field never breaks a store."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise StoreError(f"a run's config is not JSON ({e})") from None
        if not isinstance(data, dict) or not isinstance(data.get("space"), str):
            raise StoreError("a run's config names no search space")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            log.debug("run config: ignoring keys this evolve does not know: %s", ", ".join(unknown))
        return cls(**{key: value for key, value in data.items() if key in known})


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """A run as stored. `status` is what the store says (running, finished, interrupted); `state` is
    the truth for a reader: a "running" run whose driver is gone is "stopped (driver gone)"."""

    id: int
    config: RunConfig
    created: float
    status: str
    reason: str | None
    driver: Driver | None = None
    heartbeat: float | None = None

    @property
    def state(self) -> str:
        if self.status == "running" and (self.driver is None or not self.driver.alive(self.heartbeat)):
            return "stopped (driver gone)"
        if self.reason and self.reason != self.status:
            return f"{self.status} ({self.reason})"
        return self.status


@dataclasses.dataclass(frozen=True)
class Pending:
    """A proposal sent to an executor whose result is not recorded yet."""

    ticket: int
    program: Program
    fingerprint: str | None
    parent: int | None
    proposal: dict[str, Any]


# ---------------------------------------------------------------------------- the store


def _writes(method):
    """A write that fails for a reason outside evolve (a full disk, read-only media, an I/O error, a
    lock held too long) raises one StoreError that names the store; its transaction is rolled back,
    so nothing is half written. A broken constraint is evolve's own bug and keeps its traceback."""

    @functools.wraps(method)
    def write(self: "Store", *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.OperationalError as e:
            if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise StoreError(
                    f"cannot write to store {self.path}: the disk is full ({e}); everything recorded before is"
                    " intact: free some space, then resume the run"
                ) from None
            raise StoreError(f"cannot write to store {self.path}: {e}") from None

    return write


class Store:
    """An evolve store, opened (and migrated to the current schema) or created at `path` (a file name
    or an SQLite `file:` URI).

    read_only: open an existing store for reading only (`evolve runs`, `show`, `top`, `export`):
    nothing in it or beside it is ever written, so it can be read from read-only media, from a
    directory or file without write permission, or through a `mode=ro` URI. An older store is then
    migrated in memory, never on disk.

    The file itself is opened outside SQLite only here, to refuse what is not SQLite before SQLite
    touches it, and never again once a connection exists (`sibling`): closing any descriptor of the
    database file drops every POSIX lock this process holds on it, SQLite's included, after which
    another process's reader, closing, believes itself the last connection and deletes the
    write-ahead log under the running driver (https://sqlite.org/howtocorrupt.html, 2.2).
    """

    def __init__(self, path: str | os.PathLike = "evolve.db", *, read_only: bool = False, _file_checked: bool = False):
        self.path = os.fspath(path)
        self.read_only = read_only
        filename = store_file(self.path)
        if filename is not None and not _file_checked:
            _refuse_non_sqlite(filename, must_exist=read_only)
        if not read_only and _uri_reads_only(self.path):
            raise StoreError(f"{self.path} names the store read-only; a run writes to it: pass its file name as --db")
        try:
            if read_only:
                self.db = _connect_read_only(self.path, filename)
            else:
                self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None, uri=_is_uri(self.path))
        except sqlite3.Error as e:
            raise StoreError(f"cannot open store {self.path}: {e}") from None
        try:
            self._open_read_only() if read_only else self._open()
        except BaseException:
            self.db.close()
            raise

    def _open(self) -> None:
        try:
            with _Transaction(self.db, "BEGIN"):  # one snapshot, read only: what is not ours is never written
                _schema_version(self.db, self.path)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            with self._transaction():  # read again under the write lock: another process may have migrated it
                _migrate(self.db, self.path, _schema_version(self.db, self.path))
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open store {self.path}: {e}") from None

    def _open_read_only(self) -> None:
        """Check whose file it is and read it as it is; a store of an older schema is copied into
        memory and migrated there."""
        try:
            with _Transaction(self.db, "BEGIN"):
                version = _schema_version(self.db, self.path)
            if version < SCHEMA_VERSION:
                copy = sqlite3.connect(":memory:", isolation_level=None)
                self.db.backup(copy)
                self.db.close()
                self.db = copy
                with self._transaction():
                    _migrate(self.db, self.path, version)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot read store {self.path}: {e}") from None

    def sibling(self) -> "Store":
        """Another connection to this store, for another thread of this process (the driver's
        heartbeat), opened without looking at the file again (see the class docstring)."""
        return Store(self.path, read_only=self.read_only, _file_checked=True)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ runs
    @_writes
    def create_run(self, config: RunConfig) -> RunRecord:
        cur = self.db.execute(
            "INSERT INTO runs (created, config, status) VALUES (?, ?, 'running')", (time.time(), config.to_json())
        )
        return self.run(cur.lastrowid)

    def run(self, run_id: int) -> RunRecord:
        row = self.db.execute(
            "SELECT id, config, created, status, reason, driver, heartbeat FROM runs WHERE id = ?", (run_id,)
        ).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id} in {self.path}; `evolve runs --db {self.path}` lists the runs")
        try:
            config = RunConfig.from_json(row[1])
        except StoreError as e:
            raise StoreError(f"run {run_id} in {self.path}: {e}") from None
        driver = None if row[5] is None else Driver.from_dict(json.loads(row[5]))
        return RunRecord(row[0], config, row[2], row[3], row[4], driver, row[6])

    def runs(self) -> list[RunRecord]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM runs ORDER BY id")]
        return [self.run(i) for i in ids]

    @_writes
    def delete_run(self, run_id: int) -> None:
        """Remove a run that never recorded anything (its engine could not be built)."""
        with self._transaction():
            if self.db.execute("SELECT 1 FROM individuals WHERE run_id = ? LIMIT 1", (run_id,)).fetchone():
                raise StoreError(f"run {run_id} has recorded individuals; it is not deleted")
            for table in ("pending", "checkpoints", "runs"):
                column = "id" if table == "runs" else "run_id"
                self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (run_id,))

    # ------------------------------------------------------------------ who drives a run
    @_writes
    def acquire(self, run_id: int, driver: Driver) -> None:
        """Make `driver` the one process driving the run, or raise StoreError naming the live process
        that drives it. A dead driver's run is taken over."""
        with self._transaction():
            row = self.db.execute("SELECT status, driver, heartbeat FROM runs WHERE id = ?", (run_id,)).fetchone()
            if row is None:
                raise StoreError(f"no run {run_id} in {self.path}; `evolve runs --db {self.path}` lists the runs")
            status, holder, heartbeat = row
            if status == "running" and holder is not None:
                current = Driver.from_dict(json.loads(holder))
                if current != driver and current.alive(heartbeat):
                    raise StoreError(
                        f"run {run_id} is being driven by {current.describe(heartbeat)}; "
                        "wait for it to end, or stop it (Ctrl-C or kill) before resuming"
                    )
            self.db.execute(
                "UPDATE runs SET driver = ?, heartbeat = ?, status = 'running', reason = NULL WHERE id = ?",
                (_to_json(driver.to_dict()), time.time(), run_id),
            )

    @_writes
    def heartbeat(self, run_id: int, driver: Driver) -> None:
        """The driver is alive (it still holds the run)."""
        self.db.execute(
            "UPDATE runs SET heartbeat = ? WHERE id = ? AND driver = ?", (time.time(), run_id, _to_json(driver.to_dict()))
        )

    @_writes
    def release(self, run_id: int, status: str, reason: str | None) -> None:
        """The driver stops driving the run, leaving it with `status` and `reason`."""
        self.db.execute("UPDATE runs SET status = ?, reason = ?, driver = NULL WHERE id = ?", (status, reason, run_id))

    @_writes
    def set_status(self, run_id: int, status: str, reason: str | None) -> None:
        self.db.execute("UPDATE runs SET status = ?, reason = ? WHERE id = ?", (status, reason, run_id))

    def rng_state(self, run_id: int) -> dict[str, Any] | None:
        """The random generator state last committed with the run's proposals or results (a numpy
        `bit_generator.state`), or None for a run recorded before the state was kept."""
        row = self.db.execute("SELECT rng_state FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id} in {self.path}; `evolve runs --db {self.path}` lists the runs")
        return None if row[0] is None else json.loads(row[0])

    # ------------------------------------------------------------------ proposals and results
    @_writes
    def add_pending(self, run_id: int, items: Sequence[Pending], rng_state: dict[str, Any] | None = None) -> None:
        """Write proposals as pending before they are submitted; with `rng_state`, the generator state
        that follows them, in the same transaction."""
        rows = [
            (run_id, _integer(p.ticket), p.program.to_json(), p.fingerprint, _integer(p.parent), _to_json(p.proposal))
            for p in items
        ]
        state = None if rng_state is None else _to_json(rng_state)
        with self._transaction():
            self.db.executemany(
                "INSERT INTO pending (run_id, ticket, program, fingerprint, parent, proposal) VALUES (?, ?, ?, ?, ?, ?)", rows
            )
            self._write_rng_state(run_id, state)

    def pending(self, run_id: int) -> list[Pending]:
        rows = self.db.execute(
            "SELECT ticket, program, fingerprint, parent, proposal FROM pending WHERE run_id = ? ORDER BY ticket", (run_id,)
        )
        return [Pending(t, Program.from_json(p), f, parent, json.loads(info)) for t, p, f, parent, info in rows]

    @_writes
    def record(
        self, run_id: int, entries: Sequence[tuple[Individual, int, str | None]], rng_state: dict[str, Any] | None = None
    ) -> None:
        """Commit (individual, ticket, fingerprint) entries and retire their pending proposals, atomically;
        with `rng_state`, the generator state that follows them, in the same transaction."""
        now = time.time()
        rows = [
            (
                run_id, _integer(ind.id), _integer(ticket), ind.program.to_json(), ind.program.digest, fingerprint,
                _fitness_to_sql(ind.fitness), _to_json(ind.evaluation.metrics), ind.evaluation.error,
                _integer(ind.parent), int(bool(ind.cached)), _to_json(ind.proposal), float(ind.seconds), now,
            )
            for ind, ticket, fingerprint in entries
        ]
        state = None if rng_state is None else _to_json(rng_state)
        with self._transaction():
            self.db.executemany(
                "INSERT INTO individuals (run_id, id, ticket, program, digest, fingerprint, fitness, metrics, error,"
                " parent, cached, proposal, seconds, recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            self.db.executemany("DELETE FROM pending WHERE run_id = ? AND ticket = ?", [(run_id, row[2]) for row in rows])
            self._write_rng_state(run_id, state)

    def _write_rng_state(self, run_id: int, state: str | None) -> None:
        if state is not None:
            self.db.execute("UPDATE runs SET rng_state = ? WHERE id = ?", (state, run_id))

    def next_ticket(self, run_id: int) -> int:
        row = self.db.execute(
            "SELECT MAX(t) FROM (SELECT MAX(ticket) AS t FROM individuals WHERE run_id = ?"
            " UNION ALL SELECT MAX(ticket) FROM pending WHERE run_id = ?)",
            (run_id, run_id),
        ).fetchone()
        return (row[0] or 0) + 1

    # ------------------------------------------------------------------ reading individuals
    _COLUMNS = "id, program, fitness, metrics, error, parent, cached, proposal, seconds"

    def individuals(self, run_id: int, last: int | None = None) -> list[Individual]:
        """All individuals in recording order, or only the `last` ones."""
        if last is None:
            rows = self.db.execute(f"SELECT {self._COLUMNS} FROM individuals WHERE run_id = ? ORDER BY id", (run_id,))
            return [_individual(r) for r in rows]
        rows = self.db.execute(
            f"SELECT {self._COLUMNS} FROM individuals WHERE run_id = ? ORDER BY id DESC LIMIT ?", (run_id, last)
        ).fetchall()
        return [_individual(r) for r in reversed(rows)]

    def individual(self, run_id: int, individual_id: int) -> Individual:
        row = self.db.execute(
            f"SELECT {self._COLUMNS} FROM individuals WHERE run_id = ? AND id = ?", (run_id, individual_id)
        ).fetchone()
        if row is None:
            raise StoreError(f"run {run_id} has no individual {individual_id}")
        return _individual(row)

    def top(self, run_id: int, n: int) -> list[Individual]:
        """The n fittest distinct programs (first occurrence of each), best first."""
        rows = self.db.execute(
            f"SELECT {self._COLUMNS} FROM individuals WHERE run_id = ? AND fitness IS NOT NULL AND cached = 0"
            " ORDER BY fitness DESC, id ASC LIMIT ?",
            (run_id, n),
        )
        return [_individual(r) for r in rows]

    def counts(self, run_id: int) -> tuple[int, int]:
        """(evaluations spent, answers from the duplicate cache)."""
        row = self.db.execute(
            "SELECT COALESCE(SUM(1 - cached), 0), COALESCE(SUM(cached), 0) FROM individuals WHERE run_id = ?", (run_id,)
        ).fetchone()
        return int(row[0]), int(row[1])

    def failure_reasons(self, run_id: int) -> list[tuple[str, int]]:
        """Why the run's evaluations failed, as (reason, count), most common first. Answers from the
        duplicate cache repeat an evaluation and are not counted again."""
        rows = self.db.execute(
            "SELECT COALESCE(error, 'no reason recorded') AS reason, COUNT(*) AS n FROM individuals"
            " WHERE run_id = ? AND fitness IS NULL AND cached = 0 GROUP BY reason ORDER BY n DESC, reason",
            (run_id,),
        )
        return [(reason, n) for reason, n in rows]

    def fitness_history(self, run_id: int) -> list[tuple[int, float, bool]]:
        """(individual id, fitness, cached) in recording order."""
        rows = self.db.execute("SELECT id, fitness, cached FROM individuals WHERE run_id = ? ORDER BY id", (run_id,))
        return [(i, _fitness_from_sql(f), bool(c)) for i, f, c in rows]

    def fingerprint_cache(self, run_id: int) -> dict[str, Evaluation]:
        rows = self.db.execute(
            "SELECT fingerprint, fitness, metrics, error FROM individuals WHERE run_id = ? AND cached = 0 AND fingerprint IS NOT NULL",
            (run_id,),
        )
        return {fp: Evaluation(_fitness_from_sql(f), json.loads(m), e) for fp, f, m, e in rows}

    # ------------------------------------------------------------------ checkpoints
    @_writes
    def save_checkpoint(self, run_id: int, name: str, at_individual: int, data: bytes) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO checkpoints (run_id, name, at_individual, data) VALUES (?, ?, ?, ?)",
            (run_id, name, _integer(at_individual), bytes(data)),
        )

    def load_checkpoint(self, run_id: int, name: str) -> tuple[int, bytes] | None:
        row = self.db.execute(
            "SELECT at_individual, data FROM checkpoints WHERE run_id = ? AND name = ?", (run_id, name)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def _transaction(self) -> "_Transaction":
        return _Transaction(self.db)


class _Transaction:
    """BEGIN IMMEDIATE (the write lock, taken at once) by default; "BEGIN" for a consistent read."""

    def __init__(self, db: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE"):
        self.db = db
        self.begin = begin

    def __enter__(self) -> None:
        try:
            self.db.execute(self.begin)
        except BaseException:  # a Ctrl-C raised just after BEGIN ran: the transaction must not stay open
            self._rollback()
            raise

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
            except sqlite3.Error:  # e.g. SQLITE_FULL, after which the transaction may still be open
                self._rollback()
                raise
        else:
            self._rollback()

    def _rollback(self) -> None:
        """Roll back what is still open (SQLite may have rolled the transaction back itself)."""
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")


# ---------------------------------------------------------------------------- opening: whose file is it?


def store_file(path: str) -> str | None:
    """The file a store path or SQLite `file:` URI names; None for an in-memory database."""
    if path == ":memory:" or path == "":
        return None
    if not _is_uri(path):
        return path
    parsed = urllib.parse.urlsplit(path)
    if parsed.path in ("", ":memory:") or "memory" in urllib.parse.parse_qs(parsed.query).get("mode", []):
        return None
    return urllib.parse.unquote(parsed.path)


def _is_uri(path: str) -> bool:
    return path.startswith("file:")


def _uri_reads_only(path: str) -> bool:
    """Whether `path` is a URI that opens the store read-only (mode=ro, or immutable=1)."""
    if not _is_uri(path):
        return False
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    return "ro" in query.get("mode", []) or "1" in query.get("immutable", [])


def _connect_read_only(path: str, filename: str | None) -> sqlite3.Connection:
    """A connection that cannot write, and that creates no file where none may be created.

    Where the store and its directory are writable, an ordinary connection in query-only mode: it
    sees what a running driver has committed (in the write-ahead log), and SQLite removes the log
    files it opens as usual. Elsewhere (read-only media, no write permission) SQLite's `mode=ro`:
    with `immutable=1` when there is no write-ahead log beside the store, since then no process is
    writing it (a writer keeps its log open) and none could (the directory is not writable), so
    SQLite needs no lock or shared-memory file; without it when a log exists, so that what it holds
    is read too."""
    if filename is None:
        return sqlite3.connect(path, isolation_level=None, uri=_is_uri(path))
    location = os.path.abspath(filename)
    uri = "file:" + urllib.parse.quote(location)
    if os.access(location, os.W_OK) and os.access(os.path.dirname(location), os.W_OK):
        db = sqlite3.connect(uri + "?mode=rw", uri=True, timeout=30, isolation_level=None)
        db.execute("PRAGMA query_only = ON")
        return db
    if not os.path.exists(location + "-wal"):
        return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, isolation_level=None)
    db = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=30, isolation_level=None)
    try:
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:  # a log whose shared-memory file is missing and cannot be made
        db.close()
        log.warning("store %s: its write-ahead log cannot be read here; showing what was checkpointed", filename)
        return sqlite3.connect(uri + "?mode=ro&immutable=1", uri=True, isolation_level=None)
    return db


def _refuse_non_sqlite(path: str, must_exist: bool = False) -> None:
    """A file that exists and is not SQLite is not opened at all (SQLite would only say 'file is not a
    database' later). A missing or empty file becomes a new store (unless `must_exist`)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        if must_exist:
            raise StoreError(f"no store at {path}; start a run with `evolve run` or pass --db") from None
        return
    except OSError as e:
        raise StoreError(f"cannot open store {path}: {e.strerror}") from None
    if head and head != _SQLITE_HEADER:
        raise StoreError(f"{path} is not an evolve store (not an SQLite database); it was left as it is")


def _schema_version(db: sqlite3.Connection, path: str) -> int:
    """The schema version of the store in `db` (0 for an empty file); refuses a file that is not an
    evolve store, and a store written by a newer evolve, without writing anything."""
    if db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
        return 0
    tables = _tables(db)
    if "evolve_meta" not in tables:
        if _is_version_1(db, tables):
            return 1
        raise _foreign(path, tables)
    try:
        meta = dict(db.execute("SELECT key, value FROM evolve_meta"))
    except sqlite3.OperationalError:  # another program's table of that name
        raise _foreign(path, tables) from None
    if meta.get("schema") != SCHEMA_NAME:
        raise _foreign(path, tables)
    try:
        version = int(meta.get("version", ""))
    except ValueError:
        raise StoreError(f"{path} is an evolve store with an unreadable schema version {meta.get('version')!r}") from None
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} was written by a newer evolve ({meta.get('written_by', 'version unknown')}, store schema"
            f" version {version}); this is {_evolve_version()}, which reads up to version {SCHEMA_VERSION}: upgrade evolve"
        )
    return version


def _migrate(db: sqlite3.Connection, path: str, version: int) -> None:
    """Bring the store from `version` to SCHEMA_VERSION (the caller holds the transaction)."""
    if version == SCHEMA_VERSION:
        return
    for step in MIGRATIONS[version:]:
        step(db)
    db.executemany(
        "INSERT OR REPLACE INTO evolve_meta (key, value) VALUES (?, ?)",
        [("schema", SCHEMA_NAME), ("version", str(SCHEMA_VERSION)), ("written_by", _evolve_version())],
    )
    if version > 0:
        log.info("store %s migrated from schema version %d to %d", path, version, SCHEMA_VERSION)


def _tables(db: sqlite3.Connection) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite^_%' ESCAPE '^'")
    return {name for (name,) in rows}


def _layout(db: sqlite3.Connection, tables: Iterable[str]) -> dict[str, list[tuple]]:
    """Each table's columns as SQLite describes them (name, type, not null, default, key)."""
    query = "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid"
    return {table: db.execute(query, (table,)).fetchall() for table in tables}


def _is_version_1(db: sqlite3.Connection, tables: set[str]) -> bool:
    """A store of the first release: no marker, and exactly its tables with exactly their columns."""
    reference = sqlite3.connect(":memory:")
    try:
        _create_version_1(reference)
        expected = _layout(reference, _tables(reference))
    finally:
        reference.close()
    return tables == set(expected) and _layout(db, tables) == expected


def _foreign(path: str, tables: set[str]) -> StoreError:
    return StoreError(
        f"{path} is not an evolve store: an SQLite database of another program (tables: {', '.join(sorted(tables)) or 'none'});"
        " it was left as it is; pass another --db"
    )


def _evolve_version() -> str:
    from evolve.version import version

    return f"evolve {version()}"


# ---------------------------------------------------------------------------- values at the boundary


def _to_json(value: Any) -> str:
    return json.dumps(value, default=_plain)


def _plain(value: Any) -> Any:
    """json.dumps' fallback: numpy and JAX scalars and arrays as Python numbers and lists."""
    if isinstance(value, np.generic) or hasattr(value, "__array__"):
        return np.asarray(value).tolist()
    raise TypeError(f"a {type(value).__name__} cannot be stored as JSON")


def _integer(value: Any) -> int | None:
    """An id as a Python int: SQLite stores a numpy integer as a BLOB."""
    return None if value is None else operator.index(value)


def _fitness_to_sql(f: Any) -> float | None:
    """A Python float, never a BLOB (SQLite stores numpy and JAX scalars by their bytes); NULL for a failure."""
    value = float(f)
    return None if math.isnan(value) or value == -math.inf else value


def _fitness_from_sql(f: float | None) -> float:
    return -math.inf if f is None else f


def _individual(row: Iterable[Any]) -> Individual:
    i, program, fitness, metrics, error, parent, cached, proposal, seconds = row
    return Individual(
        id=i,
        program=Program.from_json(program),
        evaluation=Evaluation(_fitness_from_sql(fitness), json.loads(metrics), error),
        parent=parent,
        cached=bool(cached),
        proposal=json.loads(proposal),
        seconds=seconds,
    )
