"""The plugin keeps evolve's contracts (checked by evolve.testing), and its circuits score as they should."""

import pytest

from evolve.program import Node, Program
from evolve.testing import check_search_space
from evolve_plugin_example.circuits import BooleanCircuits


@pytest.mark.parametrize("options", [{}, {"target": "parity", "bits": 4}, {"target": "multiplexer", "bits": 6}])
def test_space_keeps_the_contract(options):
    check_search_space(BooleanCircuits, options)


def test_circuits_are_scored_on_the_whole_truth_table():
    space = BooleanCircuits(target="majority", bits=3)
    inputs = (Node("input"),) * 3
    # (x0 and x1) or ((x0 or x1) and x2): the majority of three bits
    majority = Program(inputs + (Node("and", (0, 1)), Node("or", (0, 1)), Node("and", (4, 2)), Node("or", (3, 5))), (6,), space.name)
    just_x0 = Program(inputs, (0,), space.name)  # agrees with the majority on 6 of 8 rows
    best, plain = space.evaluate([majority, just_x0])
    assert (best.fitness, best.metrics["solved"]) == (1.0, True)
    assert (plain.fitness, plain.metrics["correct"], plain.metrics["solved"]) == (0.75, 6, False)
    assert space.describe(majority) == "((x0 and x1) or ((x0 or x1) and x2))"
