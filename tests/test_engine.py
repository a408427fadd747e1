"""Small real searches through the engine: budget, determinism, duplicate cache, failures."""

import math

import numpy as np
import pytest

from evolve import hookimpl
from evolve.engine import start_run
from evolve.ops import Input, Vocabulary, elementwise_ops
from evolve.plugin_manager import PluginManager
from evolve.space import Evaluation, SearchSpace
from evolve.store import RunConfig, Store


def run(config: RunConfig, plugins=None, path=":memory:"):
    store = Store(path)
    engine = start_run(store, config, plugins)
    reason = engine.execute()
    return store, engine, reason


def sr(budget=400, **kw):
    return RunConfig("symbolic-regression", {"problem": "nguyen-1"}, budget=budget, **kw)


def test_spends_exactly_the_budget():
    store, engine, reason = run(sr(budget=500, workers=7))
    evaluated, cached = store.counts(1)
    assert reason == "budget" and evaluated == 500
    assert len(store.individuals(1)) == evaluated + cached
    assert [i.id for i in store.individuals(1)] == list(range(1, evaluated + cached + 1))
    assert store.pending(1) == []
    assert store.run(1).status == "finished"


def test_regularized_evolution_solves_nguyen1():
    store, _, reason = run(sr(budget=5000, seed=1, stop_when_solved=True))
    assert reason == "solved"
    best = store.top(1, 1)[0]
    assert best.evaluation.metrics["solved"] and best.parent is not None
    assert store.counts(1)[0] < 5000


def test_evolution_beats_random_search_at_equal_budget():
    re_best = [run(sr(budget=1500, seed=s))[0].top(1, 1)[0].fitness for s in range(3)]
    rs_best = [run(sr(budget=1500, seed=s, strategy="random-search"))[0].top(1, 1)[0].fitness for s in range(3)]
    assert np.median(re_best) > np.median(rs_best)


@pytest.mark.parametrize("workers", [1, 8])
def test_same_seed_same_run(workers):
    def trace(seed):
        store, _, _ = run(sr(budget=300, seed=seed, workers=workers))
        return [(i.program.digest, i.fitness, i.parent, i.cached) for i in store.individuals(1)]

    assert trace(3) == trace(3)
    assert trace(3) != trace(4)


def test_duplicate_cache_answers_repeats_without_spending_budget():
    store, engine, _ = run(sr(budget=1000, seed=0))
    evaluated, cached = store.counts(1)
    assert evaluated == 1000 and cached > 0
    fingerprints = store.db.execute("SELECT fingerprint, cached FROM individuals WHERE run_id = 1 ORDER BY id").fetchall()
    seen = set()
    for fingerprint, was_cached in fingerprints:
        assert bool(was_cached) == (fingerprint in seen)  # cached exactly when behaviour was seen before
        seen.add(fingerprint)


def test_population_is_the_last_p_recorded():
    store, engine, _ = run(sr(budget=600, strategy_options={"population_size": 50, "tournament_size": 5}))
    assert [i.id for i in engine.population] == [i.id for i in store.individuals(1, last=50)]


# ------------------------------------------------------------------ failing evaluations


class Flaky(SearchSpace):
    """A space whose programs sometimes raise or produce NaN, to show failures are results."""

    def __init__(self):
        self._vocab = Vocabulary((Input("x", "real"),), ("real",), elementwise_ops(["add", "mul", "sin"], "real"), 8)

    @property
    def vocabulary(self):
        return self._vocab

    def evaluate(self, programs):
        out = []
        for p in programs:
            n = len(p.pruned().nodes)
            if n % 3 == 0:
                raise RuntimeError(f"cannot handle {n} nodes")
            out.append(Evaluation(math.nan if n % 3 == 1 else float(n)))
        return out


class FlakyPlugin:
    @hookimpl
    def evolve_search_spaces(self):
        return {"flaky": Flaky}


def test_raising_and_nan_evaluations_are_recorded_as_failures():
    plugins = PluginManager(extra_plugins=(FlakyPlugin(),))
    store, _, reason = run(RunConfig("flaky", budget=200, workers=4), plugins)
    assert reason == "budget" and store.counts(1)[0] == 200
    errors = {i.evaluation.error for i in store.individuals(1) if i.evaluation.failed}
    assert any(e and "RuntimeError: cannot handle" in e for e in errors)
    assert "fitness is NaN" in errors
    assert all(i.fitness == -math.inf for i in store.individuals(1) if i.evaluation.failed)


def test_more_in_flight_than_the_population_holds():
    """Initial programs are capped at the population size; the search waits for them, then evolves."""
    store, engine, reason = run(sr(budget=200, workers=16, strategy_options={"population_size": 5, "tournament_size": 2}))
    assert reason == "budget" and store.counts(1)[0] == 200
    initial = [i for i in store.individuals(1) if i.parent is None]
    assert len(initial) == 5


class Costly(Flaky):
    """Every evaluation reports what it cost in a metric (1, 2 or 3 simulated seconds), as
    NAS-Bench-101's lookups report training time; a failure reports nothing."""

    def evaluate(self, programs):
        out = []
        for p in programs:
            n = len(p.pruned().nodes)
            out.append(Evaluation(float(n), {"training_seconds": 1.0 + n % 3}) if n % 4 else Evaluation(math.nan))
        return out


class CostlyPlugin:
    @hookimpl
    def evolve_search_spaces(self):
        return {"costly": Costly}


def spent_seconds(store) -> list[float]:
    return [i.evaluation.metrics.get("training_seconds", 0.0) for i in store.individuals(1) if not i.cached]


def test_a_metric_budget_stops_the_run_at_the_first_evaluation_that_reaches_it(tmp_path):
    """A run budgeted in simulated training seconds, as NAS-Bench-101's searches are; a resumed run
    counts what was spent before it stopped."""
    import sqlite3

    from evolve.engine import resume_run

    plugins = PluginManager(extra_plugins=(CostlyPlugin(),))
    db = str(tmp_path / "e.db")
    store, _, reason = run(RunConfig("costly", budget=100_000, workers=1, metric_budget={"training_seconds": 60}),
                           plugins, db)
    costs = spent_seconds(store)
    assert reason == "budget" and sum(costs) >= 60 and sum(costs[:-1]) < 60 and costs[-1] > 0
    assert any(c == 0 for c in costs)  # failures were evaluated and cost nothing
    store.close()
    with sqlite3.connect(db) as raw:
        # as if it had been stopped with a larger budget
        raw.execute("UPDATE runs SET config = json_set(config, '$.metric_budget.training_seconds', 150),"
                    " status = 'interrupted', reason = 'interrupted'")
    with Store(db) as again:
        assert resume_run(again, 1, plugins).execute() == "budget"
        costs = spent_seconds(again)
    assert sum(costs) >= 150 and sum(costs[:-1]) < 150


@pytest.mark.parametrize("metric_budget", [{"training_seconds": 0}, {"a": 1, "b": 2}, {"a": "soon"}, {"": 3},
                                           {"a": math.inf}])
def test_a_bad_metric_budget_is_refused_before_a_run_exists(metric_budget):
    from evolve.errors import OptionError

    store = Store(":memory:")
    with pytest.raises(OptionError, match="metric budget"):
        start_run(store, sr(metric_budget=metric_budget))
    assert store.runs() == []
