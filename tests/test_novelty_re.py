"""Novelty-filtered regularized evolution: the baseline that gets PAM-RT's novelty filter without its predictor."""

from __future__ import annotations

import pytest

from evolve.engine import start_run
from evolve.errors import OptionError
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.plugins.novelty_re import NoveltyRE
from evolve.store import RunConfig, Store
from evolve.testing import check_strategy


def run(strategy: str, budget: int, **options) -> tuple[Store, object]:
    config = RunConfig("symbolic-regression", {"problem": "nguyen-5"}, strategy,
                       {"population_size": 30, "tournament_size": 5, **options}, None, {}, "serial", {}, 1, budget, 3)
    store = Store(":memory:")
    engine = start_run(store, config)
    engine.execute()
    return store, engine


def test_children_are_remutated_until_their_behaviour_is_new():
    store, engine = run("novelty-re", 250, tries=12, per_call=5)
    individuals = store.individuals(engine.run.id)
    seen: set[str] = set()
    proposals = 0
    for ind, fingerprint in zip(individuals, engine.space.fingerprints([i.program for i in individuals])):
        info = ind.proposal
        if "tries" in info:
            proposals += 1
            assert 1 <= info["tries"] <= 12
            if info["novel"]:
                assert fingerprint not in seen and not ind.cached
            else:
                assert info["tries"] == 12  # every try was spent first
        seen.add(fingerprint)
    assert proposals > 200
    # the filter is what keeps the duplicate cache idle: plain RE is answered by it far more often
    re_store, re_engine = run("regularized-evolution", 250)
    assert store.counts(engine.run.id)[1] * 3 < re_store.counts(re_engine.run.id)[1]


def test_keeps_the_strategy_contract():
    space = PluginManager().make_space(SpaceSpec("symbolic-regression", {"problem": "nguyen-1"}))
    report = check_strategy(NoveltyRE, space, {"population_size": 20, "per_call": 3})
    assert "recover" in str(report)


def test_is_a_builtin_plugin_and_refuses_bad_options():
    assert PluginManager().lookup("strategy", "novelty-re") is NoveltyRE
    with pytest.raises(OptionError, match="tries"):
        run("novelty-re", 10, tries=0)
