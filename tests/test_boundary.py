"""The evaluation boundary and plugin isolation: a plugin that breaks its contract never corrupts a
run, never hangs it, and never ends it with a traceback (design.md 10.4)."""

import logging
import math
import re
import sys

import numpy as np
import pytest

from evolve import hookimpl
from evolve.engine import resume_run, start_run
from evolve.ops import Input, Vocabulary, elementwise_ops
from evolve.errors import PluginError
from evolve.plugin_manager import PluginManager
from evolve.predictor import Predictor
from evolve.report import show
from evolve.program import Node, Program
from evolve.space import Evaluation, SearchSpace
from evolve.strategy import Proposal, Strategy, initial_proposals
from evolve.store import RunConfig, Store


def size(program) -> int:
    return len(program.pruned().nodes)


class Honest(SearchSpace):
    """Fitness is minus the program's size: any result can be checked against its program."""

    def __init__(self):
        self._vocab = Vocabulary((Input("x", "real"),), ("real",), elementwise_ops(["add", "mul", "sin"], "real"), 10)

    @property
    def vocabulary(self):
        return self._vocab

    def evaluate(self, programs):
        return [Evaluation(float(-size(p)), {"size": size(p)}) for p in programs]


class TooMany(Honest):
    def evaluate(self, programs):
        return super().evaluate(programs) + [Evaluation(1e9)]


class TooFew(Honest):
    def evaluate(self, programs):
        return super().evaluate(programs)[:-1]


class NumpyValues(Honest):
    def evaluate(self, programs):
        return [Evaluation(np.float32(-size(p)), {"size": np.int64(size(p)), "curve": np.arange(3.0)}) for p in programs]


class JaxValues(Honest):
    def evaluate(self, programs):
        import jax.numpy as jnp

        return [Evaluation(jnp.float32(-size(p)), {"size": jnp.int32(size(p))}) for p in programs]


class Infinite(Honest):
    def evaluate(self, programs):
        return [Evaluation(math.inf if size(p) % 2 else -size(p)) for p in programs]


class OpaqueMetrics(Honest):
    def evaluate(self, programs):
        return [Evaluation(-size(p), {"model": object()}) for p in programs]


class BrokenFingerprints(Honest):
    def fingerprints(self, programs):
        raise RuntimeError("probe data missing")


class BrokenDescribe(Honest):
    def describe(self, program):
        raise KeyError("no such op")


class AlwaysFails(Honest):
    def evaluate(self, programs):
        return [Evaluation.failure("CUDA not available") for _ in programs]


class SeedsNotAList(Honest):
    def seed_programs(self, rng):
        return self.random_program(rng)  # one program, not a list of them


SPACES = {cls.__name__: cls for cls in (Honest, TooMany, TooFew, NumpyValues, JaxValues, Infinite, OpaqueMetrics,
                                         BrokenFingerprints, BrokenDescribe, AlwaysFails, SeedsNotAList)}


class Spaces:
    @hookimpl
    def evolve_search_spaces(self):
        return SPACES


def search(space: str, budget: int = 60, workers: int = 4, plugins=(), **config):
    manager = PluginManager(extra_plugins=(Spaces(), *plugins))
    store = Store(":memory:")
    engine = start_run(store, RunConfig(space, budget=budget, workers=workers, **config), manager)
    return store, engine, engine.execute()


def assert_nothing_misattributed(store):
    for ind in store.individuals(1):
        if not ind.evaluation.failed and not ind.cached:  # a cached one carries its twin's result
            assert ind.fitness == -size(ind.program)


@pytest.mark.parametrize("space, count", [("TooMany", "returned 5 evaluations for 4 programs"),
                                          ("TooFew", "returned 3 evaluations for 4 programs")])
def test_a_wrong_count_fails_the_batch_and_nothing_hangs(space, count):
    store, _, reason = search(space, workers=4)
    assert reason == "budget" and store.counts(1)[0] == 60
    initial = [ind for ind in store.individuals(1) if not ind.cached][:4]
    assert all(count in ind.evaluation.error for ind in initial)
    assert all(ind.evaluation.failed for ind in store.individuals(1))
    assert_nothing_misattributed(store)


def test_numpy_and_jax_scalars_are_converted():
    for space in ("NumpyValues", "JaxValues"):
        store, _, _ = search(space)
        individuals = store.individuals(1)
        assert not any(ind.evaluation.failed for ind in individuals)
        assert all(type(ind.fitness) is float and type(ind.evaluation.metrics["size"]) is int for ind in individuals)
        assert_nothing_misattributed(store)
        # what was stored reads back as plain numbers (no BLOB), and the reports work
        assert store.db.execute("SELECT COUNT(*) FROM individuals WHERE typeof(fitness) != 'real'").fetchone()[0] == 0
        assert "top programs" in show(store, store.run(1), Honest())
    assert store.individuals(1)[0].evaluation.metrics.get("curve", [0.0, 1.0, 2.0]) == [0.0, 1.0, 2.0]


def test_non_finite_fitness_and_opaque_metrics_are_failures_with_their_reason():
    store, _, _ = search("Infinite")
    failed = [ind for ind in store.individuals(1) if ind.evaluation.failed and not ind.cached]
    assert failed and all(ind.evaluation.error == "fitness is +inf" for ind in failed)
    assert all(size(ind.program) % 2 for ind in failed)
    store, _, _ = search("OpaqueMetrics")
    assert all("metrics are not JSON-able" in ind.evaluation.error for ind in store.individuals(1))


def test_broken_fingerprints_are_contained(caplog):
    with caplog.at_level(logging.WARNING, logger="evolve"):
        store, _, reason = search("BrokenFingerprints", budget=40)
    assert reason == "budget" and store.counts(1) == (40, 0)  # evaluated, never deduplicated
    warnings = [r.getMessage() for r in caplog.records if "fingerprints()" in r.getMessage()]
    assert len(warnings) == 1 and "RuntimeError: probe data missing" in warnings[0]


def test_broken_describe_is_contained():
    store, _, _ = search("BrokenDescribe", budget=20)
    text = show(store, store.run(1), BrokenDescribe())
    assert "(describe failed: KeyError" in text


def test_when_most_evaluations_fail_the_run_says_why(caplog):
    with caplog.at_level(logging.WARNING, logger="evolve"):
        store, _, reason = search("AlwaysFails", budget=80)
    warnings = [r.getMessage() for r in caplog.records if "evaluations failed" in r.getMessage()]
    assert len(warnings) == 1 and re.search(r"(\d+) of \1 evaluations failed", warnings[0])
    assert "CUDA not available" in warnings[0]
    text = show(store, store.run(1), AlwaysFails())
    assert "failures by reason:" in text and "CUDA not available" in text


class RaisesWhenEvaluated:
    def __init__(self):
        self.calls = 0

    @hookimpl
    def evolve_individual_evaluated(self, run, individual):
        self.calls += 1
        raise ValueError("dashboard unreachable")


class RaisesAtStart:
    @hookimpl
    def evolve_run_started(self, run, resumed, evaluated):
        raise ConnectionError("no server")


class Counts:
    def __init__(self):
        self.seen = 0
        self.finished = None

    @hookimpl
    def evolve_individual_evaluated(self, run, individual):
        self.seen += 1

    @hookimpl
    def evolve_run_finished(self, run, reason):
        self.finished = reason


def test_a_raising_reporter_is_disabled_and_the_run_goes_on(caplog):
    broken, counting = RaisesWhenEvaluated(), Counts()
    with caplog.at_level(logging.WARNING, logger="evolve"):
        store, _, reason = search("Honest", budget=50, plugins=(broken, RaisesAtStart(), counting))
    assert reason == "budget" and store.run(1).status == "finished"
    assert broken.calls == 1  # disabled after its first exception
    assert counting.seen == sum(store.counts(1)) and counting.finished == "budget"
    warnings = [r.getMessage() for r in caplog.records if "is disabled for the rest of this run" in r.getMessage()]
    assert len(warnings) == 2
    assert any("ValueError: dashboard unreachable" in w for w in warnings)
    assert any("ConnectionError: no server" in w for w in warnings)


class Misjudges(Predictor):
    """A third-party predictor whose answers break the contract in one of several ways."""

    answers = {
        "one short": lambda n: np.full(n - 1, 0.9),
        "NaN": lambda n: np.full(n, np.nan),
        "not a probability": lambda n: np.full(n, 7.0),
        "not numbers": lambda n: ["yes"] * n,
    }

    def __init__(self, space, answer: str = "NaN"):
        self.answer = answer

    def observe(self, individuals):
        pass

    def compare(self, a, b):
        return self.answers[self.answer](len(a))


class Predictors:
    @hookimpl
    def evolve_predictors(self):
        return {"misjudges": Misjudges}


@pytest.mark.parametrize("answer, message", [
    ("one short", r"compare returned shape \((\d+),\) for (\d+) pairs"),
    ("NaN", r"compare returned nan for pair 0; each answer must be a probability in \[0, 1\]"),
    ("not a probability", r"compare returned 7.0 for pair 0"),
    ("not numbers", r"compare returned list, not \d+ probabilities"),
])
def test_a_predictor_that_breaks_its_contract_stops_the_run_with_one_line_and_keeps_what_it_recorded(
        answer, message, tmp_path):
    """Guidance from answers that mean nothing is no guidance: the run stops at the first such answer
    with a PluginError naming the predictor (one line at the command line); the run is left
    interrupted with what it recorded, and resuming it meets the same line, losing nothing."""
    manager = PluginManager(extra_plugins=(Spaces(), Predictors()))
    with Store(str(tmp_path / "e.db")) as store:
        config = RunConfig("Honest", strategy="pam-rt", strategy_options={"population_size": 10, "tournament_size": 3},
                           predictor="misjudges", predictor_options={"answer": answer}, budget=40, workers=4)
        with pytest.raises(PluginError, match=r"^predictor Misjudges: " + message) as info:
            start_run(store, config, manager).execute()
        assert "\n" not in str(info.value)
        recorded = sum(store.counts(1))
        assert store.run(1).status == "interrupted" and recorded > 0
        with pytest.raises(PluginError, match=r"^predictor Misjudges: "):
            resume_run(store, 1, manager).execute()
        assert store.run(1).status == "interrupted" and sum(store.counts(1)) >= recorded
    if answer == "one short":
        found = re.search(message, str(info.value))
        assert int(found.group(1)) + 1 == int(found.group(2))


class Unsaveable(Misjudges):
    """Answers well, but its state is not bytes: a resumed run could not restore it."""

    def compare(self, a, b):
        return np.full(len(a), 0.5)

    def state(self):
        return {"weights": [1, 2, 3]}


def test_a_predictor_whose_state_is_not_bytes_stops_the_run_at_its_first_checkpoint(tmp_path):
    manager = PluginManager(extra_plugins=(Spaces(), UnsaveablePredictors()))
    with Store(str(tmp_path / "e.db")) as store:
        config = RunConfig("Honest", strategy="pam-rt", strategy_options={"population_size": 10, "tournament_size": 3},
                           predictor="unsaveable", budget=400, workers=4)
        with pytest.raises(PluginError, match=r"^predictor 'unsaveable': state\(\) returned dict, not bytes"):
            start_run(store, config, manager).execute()
        assert store.run(1).status == "interrupted"
        assert_nothing_misattributed(store)


class UnsaveablePredictors:
    @hookimpl
    def evolve_predictors(self):
        return {"unsaveable": Unsaveable}


class Proposes(Strategy):
    """A third-party strategy: regularized evolution's first step, then proposals that break the
    contract in one of several ways."""

    population_size = 8

    def __init__(self, space, breach: str = "a Program"):
        self.space, self.breach = space, breach

    def propose(self, population, n, rng):
        if population.initializing:
            return initial_proposals(self.space, population, n, rng)
        parent = population.tournament(3, rng)
        child = self.space.mutate(parent.program, rng)
        return {
            "a Program": lambda: [child] * n,
            "too many": lambda: [Proposal(child, parent.id)] * (n + 1),
            "a foreign program": lambda: [Proposal(Program(child.nodes, child.outputs, "optimizers"), parent.id)],
            "an invalid program": lambda: [Proposal(Program(child.nodes[:1] + (Node("tan", (0,)),), (1,), child.space),
                                                    parent.id)],
            "an unknown parent": lambda: [Proposal(child, 10**9)],
            "opaque info": lambda: [Proposal(child, parent.id, {"rng": rng})],
            "None": lambda: None,
            "no program": lambda: [Proposal("x + 1", parent.id)],
        }[self.breach]()


class Exhausts(Strategy):
    """A finite strategy: its space's seeds and random programs, 12 in all, then nothing more."""

    population_size = 4

    def __init__(self, space):
        self.space, self.proposed = space, 0

    def propose(self, population, n, rng):
        n = min(n, 12 - self.proposed)
        self.proposed += n
        return [Proposal(self.space.random_program(rng)) for _ in range(n)]


class Strategies:
    @hookimpl
    def evolve_strategies(self):
        return {"proposes": Proposes, "exhausts": Exhausts}


@pytest.mark.parametrize("breach, message", [
    ("a Program", r"proposal 0 is a Program, not a Proposal"),
    ("too many", r"propose returned (\d+) proposals when asked for (\d+)"),
    ("a foreign program", r"proposal 0 is not a valid program \(.*\): a program of space 'optimizers', not 'Honest'"),
    ("an invalid program", r"proposal 0 is not a valid program \(.*\): node 1 \(tan\): unknown op"),
    ("an unknown parent", r"proposal 0's parent is 1000000000, not None or the id of an individual of this run"),
    ("opaque info", r"proposal 0's info cannot be stored as JSON"),
    ("None", r"propose returned NoneType, not a list of Proposal"),
    ("no program", r"proposal 0's program is a str, not a Program"),
])
def test_a_strategy_that_breaks_its_contract_stops_the_run_with_one_line(breach, message, tmp_path):
    """What a strategy proposes is checked before anything stores or evaluates it: one PluginError
    line naming the strategy and the breach, the run left interrupted with what it recorded."""
    manager = PluginManager(extra_plugins=(Spaces(), Strategies()))
    with Store(str(tmp_path / "e.db")) as store:
        config = RunConfig("Honest", strategy="proposes", strategy_options={"breach": breach}, budget=40, workers=2)
        with pytest.raises(PluginError, match=r"^strategy 'proposes': " + message) as info:
            start_run(store, config, manager).execute()
        assert "\n" not in str(info.value)
        assert store.run(1).status == "interrupted" and 0 < sum(store.counts(1)) < 40
        assert_nothing_misattributed(store)


def test_seed_programs_that_are_not_a_list_stop_the_run_with_one_line():
    with pytest.raises(PluginError, match=r"^search space 'SeedsNotAList': seed_programs returned Program, not a list"):
        search("SeedsNotAList")


def test_a_strategy_with_nothing_more_to_propose_ends_the_run_exhausted():
    store, _, reason = search("Honest", budget=100, workers=3, strategy="exhausts", plugins=(Strategies(),))
    assert reason == "exhausted" and store.run(1).status == "finished"
    assert sum(store.counts(1)) == 12


def test_a_space_registered_in_code_runs_on_ray(ray_cluster):
    """The space's class travels with the run's spec, so Ray workers build the space the driver meant;
    and the boundary holds there too."""
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # this test module is not installed
    store, _, reason = search("TooMany", budget=20, workers=4, executor="ray", executor_options={"actors": 2})
    assert reason == "budget" and all(ind.evaluation.failed for ind in store.individuals(1))
    store, _, reason = search("NumpyValues", budget=20, workers=4, executor="ray", executor_options={"actors": 2})
    assert reason == "budget" and not any(ind.evaluation.failed for ind in store.individuals(1))
    assert_nothing_misattributed(store)
