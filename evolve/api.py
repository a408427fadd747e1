"""Stored runs, and new searches, from Python (a notebook, a script).

    import evolve

    run = evolve.search("symbolic-regression", problem="nguyen-1", budget=2000, db="runs.db")
    run.best().describe()                       # 'x1**3 + x1**2 + x1'
    with evolve.open("runs.db") as store:       # every run in a store, read-only
        for run in store:
            print(run.id, run.state, run.best().fitness)

`evolve.open` reads a store without writing anything to it or beside it (evolve.store.Store with
read_only=True), so a run can be looked at while its driver is still writing it, or from read-only
media. `evolve.search` starts a run exactly as `evolve run` does and returns it when it ends.
"""

from __future__ import annotations

import datetime
import functools
import os
from typing import Any, Iterator, NamedTuple

from evolve import report
from evolve.errors import EvolveError, OptionError, StoreError
from evolve.population import Individual
from evolve.program import Program
from evolve.store import RunConfig, RunRecord, Store, store_file


class CurvePoint(NamedTuple):
    """After `evaluations` evaluations of the budget, the best fitness found so far was `best`."""

    evaluations: int
    best: float


class Runs:
    """The runs in one store, read-only: `store[1]`, `for run in store`, `store.runs()`.

    Use it as a context manager, or call `close()`, to close the store; the runs it gave keep
    reading through it until then."""

    def __init__(self, path: str | os.PathLike = "evolve.db", *, _store: Store | None = None):
        self.path = os.fspath(path)
        self._store = _store if _store is not None else Store(self.path, read_only=True)

    def runs(self) -> list[Run]:
        """Every run, oldest first."""
        return [Run(self._store, record) for record in self._store.runs()]

    def __getitem__(self, run_id: int) -> Run:
        if isinstance(run_id, bool) or not isinstance(run_id, int):
            raise TypeError(f"a run is looked up by its id, an int; got {run_id!r}")
        return Run(self._store, self._store.run(run_id))

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs())

    def __len__(self) -> int:
        return len(self._store.runs())

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Runs:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<evolve store {self.path}: {len(self)} runs>"


def open(path: str | os.PathLike = "evolve.db") -> Runs:  # noqa: A001 - `evolve.open` mirrors the built-in's use
    """The runs stored at `path` (a store written by `evolve run` or `evolve.search`), read-only.
    A missing file, or one that is not an evolve store, raises StoreError."""
    return Runs(path)


class Run:
    """One stored run: its configuration, state, programs and curve. Everything is read from the
    store when asked, so a run that is still going shows its latest state."""

    def __init__(self, store: Store, record: RunRecord):
        self._store = store
        self.id = record.id
        self.config: RunConfig = record.config
        self.created = datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)

    @property
    def record(self) -> RunRecord:
        """The run as stored now (status, reason, driver)."""
        return self._store.run(self.id)

    @property
    def state(self) -> str:
        """"finished (budget)", "interrupted", "running", "stopped (driver gone)"..."""
        return self.record.state

    @property
    def evaluated(self) -> int:
        """Evaluations of the budget spent so far."""
        return self._store.counts(self.id)[0]

    @property
    def cached(self) -> int:
        """Proposals answered by the duplicate cache (same behaviour as a program already evaluated)."""
        return self._store.counts(self.id)[1]

    @functools.cached_property
    def space(self):
        """The run's search space (its grammar: describing and exporting programs trains nothing).
        PluginError when the plugin that provides it is not installed here."""
        from evolve.plugin_manager import PluginManager, SpaceSpec

        return PluginManager().make_space(SpaceSpec(self.config.space, self.config.space_options))

    def best(self) -> FoundProgram | None:
        """The fittest program (None before any evaluation succeeded)."""
        top = self.top(1)
        return top[0] if top else None

    def top(self, n: int = 10) -> list[FoundProgram]:
        """The n fittest distinct programs, best first (failed ones and cache answers left out)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise OptionError(f"top takes a whole number of programs, 0 or more; got {n!r}")
        return [FoundProgram(self, ind) for ind in self._store.top(self.id, n)]

    def individual(self, individual_id: int) -> FoundProgram:
        """One recorded individual by its id (the ids `top` and `evolve top` show)."""
        return FoundProgram(self, self._store.individual(self.id, individual_id))

    def individuals(self, as_frame: bool = False):
        """Every recorded individual in the order they were recorded, failures and duplicate-cache
        answers included; with as_frame=True, a pandas DataFrame (see `to_dataframe`)."""
        if as_frame:
            return self.to_dataframe()
        return [FoundProgram(self, ind) for ind in self._store.individuals(self.id)]

    def to_dataframe(self):
        """One row per recorded individual: id, parent, fitness (NaN for a failure), failed, error,
        cached, seconds, evaluations (of the budget spent once it was recorded), best_so_far, the
        program (an evolve.Program), and one column per metric the space reported (a metric whose
        name is taken is prefixed `metric_`). Needs pandas, which evolve does not install."""
        try:
            import pandas
        except ImportError:
            raise EvolveError("Run.to_dataframe needs pandas, which evolve does not install: pip install pandas;"
                              " Run.individuals() gives the same records without it") from None
        rows, spent, best = [], 0, float("-inf")
        for ind in self._store.individuals(self.id):
            spent += 0 if ind.cached else 1
            best = max(best, ind.fitness)
            row = {
                "id": ind.id, "parent": ind.parent, "fitness": ind.fitness if ind.fitness > float("-inf") else float("nan"),
                "failed": ind.evaluation.failed, "error": ind.evaluation.error, "cached": ind.cached,
                "seconds": ind.seconds, "evaluations": spent, "best_so_far": best if best > float("-inf") else float("nan"),
                "program": ind.program,
            }
            for key, value in ind.evaluation.metrics.items():
                row[f"metric_{key}" if key in row else key] = value
            rows.append(row)
        frame = pandas.DataFrame(rows) if rows else pandas.DataFrame(columns=list(_FRAME_COLUMNS))
        frame["parent"] = frame["parent"].astype("Int64")  # None for the initial programs, not NaN
        return frame.set_index("id", drop=False)

    def curve(self) -> list[CurvePoint]:
        """The best fitness found after each evaluation of the budget: (evaluations, best)."""
        return [CurvePoint(x, y) for x, y in report.best_so_far(self._store.fitness_history(self.id))]

    def show(self, top: int = 5) -> str:
        """The text `evolve show` prints for this run."""
        return report.show(self._store, self.record, self.space, top=top)

    @functools.cached_property
    def problem(self):
        """The run's problem: the one it was given, else its space's default (None for a space
        without problems, or whose plugin is not installed here)."""
        from evolve.plugin_manager import PluginManager

        try:
            space_class = PluginManager().lookup("search space", self.config.space)
        except EvolveError:
            space_class = None
        return self.config.space_options.get("problem", report.space_default(space_class, "problem"))

    def __repr__(self) -> str:
        what = self.config.space + (f" {self.problem}" if self.problem is not None else "")
        return f"<run {self.id}: {what} / {self.config.strategy}, {self.evaluated} of {self.config.budget} evaluations, {self.state}>"


_FRAME_COLUMNS = ("id", "parent", "fitness", "failed", "error", "cached", "seconds", "evaluations", "best_so_far", "program")


class FoundProgram:
    """A program a run recorded, with its result: `.program`, `.fitness`, `.metrics`, `.describe()`,
    `.export(format)`."""

    def __init__(self, run: Run, individual: Individual):
        self.run = run
        self.individual = individual

    id = property(lambda self: self.individual.id, doc="its id within the run")
    program: Program = property(lambda self: self.individual.program, doc="the program (an evolve.Program)")
    fitness = property(lambda self: self.individual.fitness, doc="higher is better; -inf when it failed")
    metrics = property(lambda self: self.individual.evaluation.metrics, doc="what the space measured")
    error = property(lambda self: self.individual.evaluation.error, doc="why it failed, or None")
    parent = property(lambda self: self.individual.parent, doc="the id of the program it was mutated from")
    cached = property(lambda self: self.individual.cached, doc="answered by the duplicate cache")
    seconds = property(lambda self: self.individual.seconds, doc="evaluation time")

    def describe(self) -> str:
        """The program as `evolve show` prints it (a formula, simplified where that is shorter)."""
        return report.readable(self.run.space, self.program)

    def export(self, format: str = "json") -> str:
        """The program as text in one of its space's formats (`run.space.export_formats`)."""
        self.run.space.check_export_format(format)
        return self.run.space.export(self.program, format)

    def __repr__(self) -> str:
        return f"<program {self.id} of run {self.run.id}: fitness {self.fitness:.6g}, {len(self.program.pruned().nodes)} nodes>"


def search(
    space: str,
    *,
    budget: int = 1000,
    strategy: str = "regularized-evolution",
    db: str | os.PathLike = "evolve.db",
    seed: int = 0,
    workers: int = 16,
    executor: str = "serial",
    problem: str | None = None,
    predictor: str | None = None,
    stop_when_solved: bool = False,
    space_options: dict[str, Any] | None = None,
    strategy_options: dict[str, Any] | None = None,
    predictor_options: dict[str, Any] | None = None,
    executor_options: dict[str, Any] | None = None,
) -> Run:
    """Run a search to its end, as `evolve run` does, and return it (read from the store `db`).

    The arguments are `evolve run`'s options; `*_options` are the plugins' options as a dict (see
    `evolve plugins NAME`). A mistake (unknown space, strategy or option, a bad value) raises an
    evolve.EvolveError with one clear message and leaves no run behind. Ctrl-C (KeyboardInterrupt)
    stops the run, recorded as interrupted: `evolve.resume(run_id, db=...)` or `evolve resume`
    continues it exactly."""
    from evolve.engine import prepare, start_run

    for name, value in (("budget", budget), ("seed", seed), ("workers", workers)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise OptionError(f"{name} must be a whole number, got {value!r}")
    for name, value in (("space_options", space_options), ("strategy_options", strategy_options),
                        ("predictor_options", predictor_options), ("executor_options", executor_options)):
        if value is not None and not isinstance(value, dict):
            raise OptionError(f"{name} must be a dict of option names to values, got {type(value).__name__}")
    options = dict(space_options or {})
    if problem is not None:
        options["problem"] = problem
    config = RunConfig(
        space=space, space_options=options, strategy=strategy,
        strategy_options=dict(strategy_options or {}), predictor=predictor,
        predictor_options=dict(predictor_options or {}), executor=executor,
        executor_options=dict(executor_options or {}), workers=workers, budget=budget, seed=seed,
        stop_when_solved=stop_when_solved,
    )
    config = prepare(config)  # a mistake ends here, before a store file is made
    store = Store(db)
    try:
        engine = start_run(store, config)
        _execute(engine, store)
    except BaseException:
        store.close()
        raise
    return _reading(store, engine.run.id)


def resume(run_id: int, *, db: str | os.PathLike = "evolve.db") -> Run:
    """Continue a run that was interrupted or whose driver died, to its end, and return it."""
    from evolve.engine import resume_run

    filename = store_file(os.fspath(db))
    if filename is not None and not os.path.exists(filename):
        raise StoreError(f"no store at {os.fspath(db)}")
    store = Store(db)
    try:
        _execute(resume_run(store, run_id), store)
    except BaseException:
        store.close()
        raise
    return _reading(store, run_id)


def _execute(engine, store: Store) -> None:
    """Run the engine; on Ctrl-C the run is already recorded as interrupted: say how to go on."""
    import sys

    try:
        engine.execute()
    except KeyboardInterrupt:
        print(f"evolve: run {engine.run.id} interrupted; continue it with evolve.resume({engine.run.id},"
              f" db={store.path!r})", file=sys.stderr)
        raise


def _reading(store: Store, run_id: int) -> Run:
    """The finished run, read through a read-only connection (the writing one is closed); a store in
    memory has only the one connection, which the run keeps."""
    if store_file(store.path) is None:
        return Runs(store.path, _store=store)[run_id]
    store.close()
    return Runs(store.path)[run_id]


__all__ = ["CurvePoint", "FoundProgram", "Run", "Runs", "open", "resume", "search"]
