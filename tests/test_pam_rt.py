"""Small real guided searches through the engine: what they record, and resuming with the same predictor."""

from __future__ import annotations

import numpy as np
import pytest

from evolve.engine import resume_run, start_run
from evolve.errors import OptionError
from evolve.plugin_manager import PluginManager
from evolve.plugins.pam_rt import PamRT
from evolve.population import AgingPopulation, Individual
from evolve.predictor import Predictor
from evolve.report import show
from evolve.store import RunConfig, Store

SMALL = {"population_size": 20, "tournament_size": 4}
QUICK = {"warmup": 30, "warmup_steps": 10, "train_every": 4, "steps": 1, "width": 16, "heads": 2, "batch_programs": 16}


def config(strategy: str, predictor: str | None, budget: int, **strategy_options) -> RunConfig:
    return RunConfig(
        "symbolic-regression", {"problem": "nguyen-5"}, strategy, {**SMALL, **strategy_options},
        predictor, QUICK if predictor in (None, "binary", "regression") else {}, "serial", {}, 1, budget, 0,
    )


def test_pam_rt_records_tries_predictions_and_seconds():
    store = Store(":memory:")
    engine = start_run(store, config("pam-rt", None, 120, chain_length=4, tournaments=2))
    assert engine.config.predictor == "binary"  # the strategy's default predictor
    assert engine.execute() == "budget"
    assert store.counts(engine.run.id)[0] == 120
    guided = [ind for ind in store.individuals(engine.run.id) if ind.proposal.get("guided")]
    assert guided
    for ind in guided:
        info = ind.proposal
        assert 1 <= info["tries"] <= 8 and 0.0 <= info["predicted"] <= 1.0 and info["predictor_seconds"] >= 0.0
        assert ind.parent is not None
        assert info["guidance_seconds"] > 0.0 and "over_share" not in info  # no share bound by default
    report = show(store, store.run(engine.run.id), engine.space)
    assert "online accuracy" in report and "tries per evaluated child" in report and "inference" in report
    assert "guidance:" in report and "the evaluation time" in report  # its cost weighed against the evaluations'


@pytest.mark.parametrize("strategy,predictor", [("predictor-filter", "binary"), ("pam-rt", "oracle")])
def test_other_guided_searches_run(strategy, predictor):
    store = Store(":memory:")
    engine = start_run(store, config(strategy, predictor, 60))
    engine.execute()
    assert store.counts(engine.run.id)[0] == 60


def test_pam_rt_with_a_perfect_oracle_evaluates_only_children_that_beat_their_parent():
    store = Store(":memory:")
    engine = start_run(store, config("pam-rt", "oracle", 80, chain_length=3, tournaments=6, tournaments_per_call=2))
    engine.execute()
    individuals = store.individuals(engine.run.id)
    fitness = {ind.id: ind.fitness for ind in individuals}
    accepted = [ind for ind in individuals if ind.proposal.get("accepted")]
    assert len(accepted) >= 10
    for ind in accepted:
        assert ind.fitness > fitness[ind.parent] and ind.proposal["tries"] <= 18
    for ind in individuals:
        if ind.proposal.get("guided") and not ind.proposal["accepted"]:
            assert ind.proposal["tries"] == 18  # the whole try budget was spent first


def test_pam_rt_needs_a_predictor_it_can_build():
    with pytest.raises(OptionError):
        start_run(Store(":memory:"), config("pam-rt", "binary", 10, chain_length=0))


def test_resume_continues_with_the_same_discriminator(monkeypatch):
    from evolve import engine as engine_module

    monkeypatch.setattr(engine_module, "CHECKPOINT_EVERY", 50)
    store = Store(":memory:")
    first = start_run(store, config("pam-rt", "binary", 90, chain_length=4, tournaments=1))
    first.execute()
    store.set_status(first.run.id, "interrupted", "interrupted")
    resumed = resume_run(store, first.run.id)
    resumed.execute()  # restores from the checkpoint, re-observes what came after it, spends nothing
    assert resumed.predictor.seen == first.predictor.seen
    programs = [ind.program for ind in store.individuals(first.run.id)[-40:]]
    np.testing.assert_allclose(
        resumed.predictor.compare(programs[:20], programs[20:]), first.predictor.compare(programs[:20], programs[20:]), atol=1e-6
    )


class FavoursWeakParents(Predictor):
    """Never confident (below PAM-RT's threshold of 0.75), and likes a child more the weaker its parent."""

    def __init__(self, fitness: dict[str, float]):
        self.fitness = fitness

    def observe(self, individuals):
        pass

    def compare(self, a, b):
        return np.array([0.7 / (1.0 + np.exp(self.fitness[parent.digest])) for parent in b])


@pytest.mark.parametrize("fallback", ["best-liked", "first-parent"])
def test_a_proposal_nothing_was_accepted_for_falls_back_as_its_option_says(fallback):
    plugins = PluginManager()
    space = plugins.make_space(plugins.space_spec("symbolic-regression", {"problem": "nguyen-5"}))
    rng = np.random.default_rng(0)
    programs = [space.random_program(rng) for _ in range(20)]
    population = AgingPopulation(20)
    for k, (program, evaluation) in enumerate(zip(programs, space.evaluate(programs)), 1):
        population.add(Individual(k, program, evaluation))
    fitness = {ind.id: ind.fitness for ind in population}
    strategy = PamRT(space, FavoursWeakParents({ind.program.digest: ind.fitness for ind in population}),
                     population_size=20, tournament_size=3, chain_length=2, tournaments=8, tournaments_per_call=4,
                     fallback=fallback)
    proposals, _ = strategy.guided_proposals(population, 30, np.random.default_rng(1))
    assert not any(p.info["accepted"] for p in proposals) and all(p.info["tries"] == 16 for p in proposals)
    # the first call draws all its tournaments (4 per proposal) before it mutates: replay them
    replay = np.random.default_rng(1)
    first_parents = [[population.tournament(3, replay).id for _ in range(4)][0] for _ in proposals]
    chosen = [p.parent for p in proposals]
    if fallback == "first-parent":
        assert chosen == first_parents
    else:  # the child liked best comes from the weakest of the 8 parents, never a stronger one than the first
        assert all(fitness[c] <= fitness[f] for c, f in zip(chosen, first_parents))
        assert sum(fitness[c] < fitness[f] for c, f in zip(chosen, first_parents)) > len(proposals) // 2


def test_pam_rt_refuses_an_unknown_fallback():
    with pytest.raises(OptionError, match="fallback must be one of best-liked, first-parent"):
        start_run(Store(":memory:"), config("pam-rt", "binary", 10, fallback="worst"))
