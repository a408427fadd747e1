"""Cost-aware guidance: what a run's guidance cost against what it saved, and the bound on the
predictor's share of the evaluation time (a cheap space degrades to regularized evolution)."""

from __future__ import annotations

import pytest

from evolve.engine import start_run
from evolve.errors import OptionError
from evolve.guidance_cost import MIN_BASELINE, summary, verdict_line
from evolve.population import Individual
from evolve.program import Node, Program
from evolve.report import show
from evolve.space import Evaluation
from evolve.store import RunConfig, Store

QUICK = {"warmup": 30, "warmup_steps": 10, "train_every": 4, "steps": 1, "width": 16, "heads": 2, "batch_programs": 16}


def _individual(id_: int, fitness: float, parent: int | None, seconds: float, **proposal) -> Individual:
    program = Program((Node("input"), Node("add", (0, 0))), (1,), "test")
    return Individual(id_, program, Evaluation(fitness), parent, False, proposal, seconds)


def _history(guided_better: int, guided_worse: int, unguided_better: int, unguided_worse: int, guidance_seconds: float):
    """One parent of fitness 0.5, then children of 0.6 (better) or 0.4 (worse), each evaluated in 1 ms."""
    out = [_individual(1, 0.5, None, 0.001, initial=True)]
    kinds = ([(True, 0.6)] * guided_better + [(True, 0.4)] * guided_worse
             + [(False, 0.6)] * unguided_better + [(False, 0.4)] * unguided_worse)
    for k, (guided, fitness) in enumerate(kinds):
        info = {"guided": True, "guidance_seconds": guidance_seconds} if guided else {"guided": False}
        out.append(_individual(k + 2, fitness, 1, 0.001, **info))
    return out


def test_saving_is_estimated_from_how_often_guided_and_unguided_children_beat_their_parent():
    # guided children beat the parent 40% of the time, unguided 10%: each guided evaluation is worth 4
    s = summary(_history(40, 60, 10, 90, guidance_seconds=0.001))
    assert s["guided_improvement_rate"] == pytest.approx(0.4) and s["unguided_improvement_rate"] == pytest.approx(0.1)
    assert s["evaluations_saved"] == pytest.approx(100 * (4 - 1))
    # 100 guided proposals of 1 ms against 201 evaluations of 1 ms
    assert s["guidance_seconds"] == pytest.approx(0.1) and s["share"] == pytest.approx(0.1 / 0.201)
    assert s["evaluations_bought"] == pytest.approx(100)
    assert "paying for itself" in verdict_line(s) and "NOT" not in verdict_line(s)


def test_guidance_that_costs_more_than_it_saves_says_so():
    s = summary(_history(40, 60, 10, 90, guidance_seconds=0.05))  # 50 evaluations' time per guided proposal
    assert s["evaluations_bought"] == pytest.approx(5000) and s["evaluations_saved"] == pytest.approx(300)
    assert "NOT paying for itself" in verdict_line(s)


def test_without_enough_unguided_children_the_line_gives_the_break_even():
    s = summary(_history(40, 60, 1, MIN_BASELINE - 2, guidance_seconds=0.01))
    assert s["evaluations_saved"] is None
    line = verdict_line(s)
    assert "too few unguided children" in line and "worth more than 11" in line  # 1 + 10 ms / 1 ms


def test_an_unguided_run_has_no_guidance_summary():
    assert summary([_individual(1, 0.5, None, 0.001, initial=True), _individual(2, 0.6, 1, 0.001)]) is None


def config(budget: int, predictor: str = "binary", **strategy_options) -> RunConfig:
    return RunConfig("symbolic-regression", {"problem": "nguyen-1"}, "pam-rt",
                     {"population_size": 20, "tournament_size": 4, "chain_length": 4, "tournaments": 2, **strategy_options},
                     predictor, QUICK if predictor == "binary" else {}, "serial", {}, 4, budget, 0)


def test_a_tight_share_bound_falls_back_to_regularized_evolution_and_the_run_finishes():
    """Nguyen-1 evaluates in well under a millisecond, the predictor takes tens: with a bound of 0.5
    the run is regularized evolution once the predictor has spent its share, its training is held,
    and every guided proposal was made while the share was within the bound."""
    store = Store(":memory:")
    engine = start_run(store, config(150, max_predictor_share=0.5))
    assert engine.execute() == "budget"
    assert store.counts(engine.run.id)[0] == 150
    individuals = store.individuals(engine.run.id)
    fallbacks = [ind for ind in individuals if ind.proposal.get("over_share")]
    assert fallbacks and all(not ind.proposal["guided"] for ind in fallbacks)
    assert all(ind.proposal["predictor_share"] is None or ind.proposal["predictor_share"] > 0.5 for ind in fallbacks)
    for ind in individuals:
        if ind.proposal.get("guided"):
            assert ind.proposal["predictor_share"] <= 0.5
    assert engine.predictor.metrics()["skipped_steps"] > 0  # training held while over the bound
    report = show(store, store.run(engine.run.id), engine.space)
    assert "fell back to regularized evolution over the share bound" in report


@pytest.mark.parametrize("bound", [0, -1, float("inf")])
def test_a_share_bound_must_be_a_positive_number(bound):
    with pytest.raises(OptionError, match="max_predictor_share"):
        start_run(Store(":memory:"), config(10, "oracle", max_predictor_share=bound))
