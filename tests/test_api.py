"""The Python API: `evolve.search` runs a real search and returns it; `evolve.open` reads stored runs
(read-only), their best programs, records, curve and exports; Ctrl-C leaves a run that resumes."""

import os
import signal
import sqlite3
import sys
import threading
import time

import pytest
from watch import recorded

import evolve
from evolve.errors import EvolveError, OptionError, PluginError, StoreError


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    """A small real search that solves Nguyen-1 (seed 1 does within 3,000 evaluations, as in test_cli)."""
    db = str(tmp_path_factory.mktemp("api") / "runs.db")
    run = evolve.search("symbolic-regression", problem="nguyen-1", budget=3000, seed=1, stop_when_solved=True, db=db)
    return db, run


def test_search_returns_the_finished_run(solved):
    db, run = solved
    assert run.id == 1 and run.state == "finished (solved)"
    assert run.config.space == "symbolic-regression" and run.config.space_options == {"problem": "nguyen-1"}
    best = run.best()
    assert best.metrics["solved"] is True and best.fitness == pytest.approx(1.0)
    assert best.describe() == "x1**3 + x1**2 + x1"  # simplified: the stored program may nest it differently
    assert "x_{1}" in best.export("latex") and best.export("sympy") != ""
    assert evolve.Program.from_json(best.export("json")) == best.program


def test_open_reads_the_store_without_writing(solved):
    db, _ = solved
    before = {name: os.path.getmtime(os.path.join(os.path.dirname(db), name)) for name in os.listdir(os.path.dirname(db))}
    with evolve.open(db) as store:
        assert len(store) == 1 and [run.id for run in store] == [1] and [run.id for run in store.runs()] == [1]
        run = store[1]
        top = run.top(5)
        assert [p.fitness for p in top] == sorted((p.fitness for p in top), reverse=True)
        assert top[0].id == run.best().id and run.individual(top[0].id).program == top[0].program
        records = run.individuals()
        assert len(records) == run.evaluated + run.cached and [r.id for r in records] == list(range(1, len(records) + 1))
        assert any(r.cached for r in records) and all(r.parent is None or r.parent < r.id for r in records)
        curve = run.curve()
        assert [point.evaluations for point in curve] == list(range(1, run.evaluated + 1))
        assert all(a.best <= b.best for a, b in zip(curve, curve[1:])) and curve[-1].best == run.best().fitness
        assert "top programs:" in run.show() and run.problem == "nguyen-1"
        with pytest.raises(StoreError, match="no run 7"):
            store[7]
        with pytest.raises(sqlite3.OperationalError):  # the connection is read-only
            store._store.db.execute("DELETE FROM runs")
    after = {name: os.path.getmtime(os.path.join(os.path.dirname(db), name)) for name in os.listdir(os.path.dirname(db))}
    assert after == before


def test_individuals_as_a_dataframe(solved):
    pandas = pytest.importorskip("pandas")
    _, run = solved
    frame = run.individuals(as_frame=True)
    assert isinstance(frame, pandas.DataFrame) and len(frame) == len(run.individuals())
    assert {"id", "parent", "fitness", "cached", "evaluations", "best_so_far", "program", "nrmse", "solved"} <= set(frame.columns)
    assert frame["evaluations"].iloc[-1] == run.evaluated
    assert frame["best_so_far"].max() == run.best().fitness and frame.loc[run.best().id, "solved"]
    assert str(frame["parent"].dtype) == "Int64"  # an id, or missing for an initial program (not a float NaN)
    assert frame["parent"].isna().sum() == sum(record.parent is None for record in run.individuals()) > 0


def test_dataframe_without_pandas_says_how(solved, monkeypatch):
    _, run = solved
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    with pytest.raises(EvolveError, match="needs pandas, which evolve does not install: pip install pandas"):
        run.to_dataframe()


@pytest.mark.parametrize("call, error, message", [
    (dict(space="nope"), PluginError, "unknown search space 'nope'"),
    (dict(space="sleep", strategy="nope"), PluginError, "unknown strategy 'nope'"),
    (dict(space="sleep", space_options={"bogus": 1}), OptionError, "search space 'sleep' has no option 'bogus'"),
    (dict(space="symbolic-regression", problem="nguyen-99"), OptionError, "unknown problem 'nguyen-99'"),
    (dict(space="sleep", budget="many"), OptionError, "budget must be a whole number, got 'many'"),
    (dict(space="sleep", budget=0), OptionError, "budget must be at least 1"),
    (dict(space="sleep", strategy_options=["population_size", 5]), OptionError, "strategy_options must be a dict"),
])
def test_mistakes_raise_one_clear_error_and_leave_no_run(call, error, message, tmp_path):
    db = tmp_path / "mistakes.db"
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        evolve.search(db=db, **call)
    if db.exists():
        with evolve.open(db) as store:
            assert len(store) == 0


def test_ctrl_c_leaves_the_run_interrupted_and_resumable(tmp_path, capsys):
    db = str(tmp_path / "interrupted.db")
    searching = threading.Event()

    def ctrl_c_once_50_are_recorded():  # a real SIGINT, mid-run
        while searching.is_set() and recorded(db) < 50:
            time.sleep(0.01)
        if searching.is_set():
            os.kill(os.getpid(), signal.SIGINT)

    # Python's own Ctrl-C, even when the tests run as a background job (SIGINT ignored)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    searching.set()
    interrupter = threading.Thread(target=ctrl_c_once_50_are_recorded)
    interrupter.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            evolve.search("sleep", space_options={"seconds": 0.01}, budget=600, workers=2, seed=3, db=db)
    finally:
        searching.clear()
        interrupter.join()
        signal.signal(signal.SIGINT, previous)
    assert "evolve.resume(1, db=" in capsys.readouterr().err
    with evolve.open(db) as store:
        stopped = store[1]
        assert stopped.state == "interrupted" and 0 < stopped.evaluated < 600
        spent = stopped.evaluated
    resumed = evolve.resume(1, db=db)
    assert resumed.state == "finished (budget)" and resumed.evaluated == 600 > spent


def test_a_search_in_memory_is_read_back(tmp_path):
    run = evolve.search("sleep", space_options={"seconds": 0}, budget=20, workers=4, db=":memory:")
    assert run.evaluated == 20 and len(run.curve()) == 20 and run.best() is not None
    assert run.problem is None and "sleep" in repr(run)
