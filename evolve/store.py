"""The SQLite store: runs, individuals, in-flight proposals and checkpoints (design.md section 8).

One file (default ./evolve.db) in WAL mode. Each evaluation is committed before anything else learns of
it, and every proposal sent to an executor is written as pending first, so a run killed at any moment
(kill -9 included) resumes with no evaluation lost and none repeated: recorded individuals rebuild the
population, pending proposals are submitted again.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from typing import Any, Iterable, Sequence

from evolve.errors import StoreError
from evolve.population import Individual
from evolve.program import Program
from evolve.space import Evaluation

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created REAL NOT NULL,
    config TEXT NOT NULL,            -- RunConfig as JSON
    status TEXT NOT NULL,            -- running | finished | interrupted
    reason TEXT                      -- why it stopped: budget | solved | interrupted | stalled
);
CREATE TABLE IF NOT EXISTS individuals (
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
);
CREATE INDEX IF NOT EXISTS individuals_fitness ON individuals(run_id, fitness);
CREATE TABLE IF NOT EXISTS pending (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    ticket INTEGER NOT NULL,
    program TEXT NOT NULL,
    fingerprint TEXT,
    parent INTEGER,
    proposal TEXT NOT NULL,
    PRIMARY KEY (run_id, ticket)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id INTEGER NOT NULL REFERENCES runs(id),
    name TEXT NOT NULL,
    at_individual INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""


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

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "RunConfig":
        return cls(**json.loads(text))


@dataclasses.dataclass(frozen=True)
class RunRecord:
    id: int
    config: RunConfig
    created: float
    status: str
    reason: str | None


@dataclasses.dataclass(frozen=True)
class Pending:
    """A proposal sent to an executor whose result is not recorded yet."""

    ticket: int
    program: Program
    fingerprint: str | None
    parent: int | None
    proposal: dict[str, Any]


class Store:
    def __init__(self, path: str = "evolve.db"):
        self.path = path
        try:
            self.db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open store {path!r}: {e}") from None

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ runs
    def create_run(self, config: RunConfig) -> RunRecord:
        cur = self.db.execute(
            "INSERT INTO runs (created, config, status) VALUES (?, ?, 'running')", (time.time(), config.to_json())
        )
        return self.run(cur.lastrowid)

    def run(self, run_id: int) -> RunRecord:
        row = self.db.execute("SELECT id, config, created, status, reason FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id} in {self.path}; `evolve runs --db {self.path}` lists the runs")
        return RunRecord(row[0], RunConfig.from_json(row[1]), row[2], row[3], row[4])

    def runs(self) -> list[RunRecord]:
        ids = [r[0] for r in self.db.execute("SELECT id FROM runs ORDER BY id")]
        return [self.run(i) for i in ids]

    def delete_run(self, run_id: int) -> None:
        """Remove a run that never recorded anything (its engine could not be built)."""
        with self._transaction():
            if self.db.execute("SELECT 1 FROM individuals WHERE run_id = ? LIMIT 1", (run_id,)).fetchone():
                raise StoreError(f"run {run_id} has recorded individuals; it is not deleted")
            for table in ("pending", "checkpoints", "runs"):
                column = "id" if table == "runs" else "run_id"
                self.db.execute(f"DELETE FROM {table} WHERE {column} = ?", (run_id,))

    def set_status(self, run_id: int, status: str, reason: str | None) -> None:
        self.db.execute("UPDATE runs SET status = ?, reason = ? WHERE id = ?", (status, reason, run_id))

    # ------------------------------------------------------------------ proposals and results
    def add_pending(self, run_id: int, items: Sequence[Pending]) -> None:
        with self._transaction():
            self.db.executemany(
                "INSERT INTO pending (run_id, ticket, program, fingerprint, parent, proposal) VALUES (?, ?, ?, ?, ?, ?)",
                [(run_id, p.ticket, p.program.to_json(), p.fingerprint, p.parent, json.dumps(p.proposal)) for p in items],
            )

    def pending(self, run_id: int) -> list[Pending]:
        rows = self.db.execute(
            "SELECT ticket, program, fingerprint, parent, proposal FROM pending WHERE run_id = ? ORDER BY ticket", (run_id,)
        )
        return [Pending(t, Program.from_json(p), f, parent, json.loads(info)) for t, p, f, parent, info in rows]

    def record(self, run_id: int, entries: Sequence[tuple[Individual, int, str | None]]) -> None:
        """Commit (individual, ticket, fingerprint) entries and retire their pending proposals, atomically."""
        now = time.time()
        with self._transaction():
            self.db.executemany(
                "INSERT INTO individuals (run_id, id, ticket, program, digest, fingerprint, fitness, metrics, error,"
                " parent, cached, proposal, seconds, recorded) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        run_id, ind.id, ticket, ind.program.to_json(), ind.program.digest, fingerprint,
                        _fitness_to_sql(ind.fitness), json.dumps(ind.evaluation.metrics), ind.evaluation.error,
                        ind.parent, int(ind.cached), json.dumps(ind.proposal), ind.seconds, now,
                    )
                    for ind, ticket, fingerprint in entries
                ],
            )
            self.db.executemany(
                "DELETE FROM pending WHERE run_id = ? AND ticket = ?", [(run_id, ticket) for _, ticket, _ in entries]
            )

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
    def save_checkpoint(self, run_id: int, name: str, at_individual: int, data: bytes) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO checkpoints (run_id, name, at_individual, data) VALUES (?, ?, ?, ?)",
            (run_id, name, at_individual, data),
        )

    def load_checkpoint(self, run_id: int, name: str) -> tuple[int, bytes] | None:
        row = self.db.execute(
            "SELECT at_individual, data FROM checkpoints WHERE run_id = ? AND name = ?", (run_id, name)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _fitness_to_sql(f: float) -> float | None:
    return None if math.isinf(f) and f < 0 else f


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
