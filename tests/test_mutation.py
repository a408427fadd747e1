"""Generic typed mutations: always valid, always different, or a clear error."""

import numpy as np
import pytest

from evolve import mutation
from evolve.errors import MutationError
from evolve.ops import Input, Op, Vocabulary, elementwise_ops
from evolve.program import Node, Program

VOCAB = Vocabulary(
    inputs=(Input("x", "real"), Input("v", "vec")),
    output_types=("real", "vec"),
    ops=elementwise_ops(["add", "sub", "mul", "sin", "cos"], "real")
    + (Op("sum", ("vec",), "real"), Op("scale", ("vec", "real"), "vec")),
    max_nodes=16,
    const_type="real",
)


def test_random_programs_are_valid():
    rng = np.random.default_rng(0)
    for _ in range(200):
        mutation.random_program(VOCAB, "toy", rng).validate(VOCAB)


def test_mutations_are_valid_and_differ_from_parent():
    rng = np.random.default_rng(1)
    program = mutation.random_program(VOCAB, "toy", rng)
    for _ in range(2000):
        child = mutation.mutate(program, VOCAB, rng)
        child.validate(VOCAB)
        assert child != program
        assert len(child.nodes) <= VOCAB.max_nodes
        program = child


@pytest.mark.parametrize("kind", mutation.MUTATIONS, ids=lambda k: k.__name__)
def test_each_mutation_keeps_types(kind):
    rng = np.random.default_rng(2)
    applied = 0
    for _ in range(300):
        program = mutation.random_program(VOCAB, "toy", rng)
        child = kind(program, VOCAB, rng)
        if child is not None:
            child.pruned().validate(VOCAB)
            applied += 1
    assert applied > 0


def test_perturb_constant_multiplies_by_a_power_of_two():
    p = Program((Node("input"), Node("input"), Node("const", (), 3.0), Node("sum", (1,)), Node("add", (2, 3))), (4, 1), "toy")
    child = mutation.perturb_constant(p, VOCAB, np.random.default_rng(3))
    ratio = child.nodes[2].value / 3.0
    assert ratio > 0 and ratio != 1.0


def test_unchangeable_program_raises_after_bounded_tries():
    vocab = Vocabulary((Input("x", "real"),), ("real",), elementwise_ops(["sin"], "real"), max_nodes=1)
    p = Program((Node("input"),), (0,), "tiny")
    with pytest.raises(MutationError, match="no mutation changed"):
        mutation.mutate(p, vocab, np.random.default_rng(0), max_tries=50)


def test_random_programs_give_outputs_of_one_type_distinct_nodes():
    vocab = Vocabulary((Input("g", "t"),), ("t", "t", "t"), elementwise_ops(["add", "mul", "sin"], "t"), 16)
    rng = np.random.default_rng(0)
    distinct = [len(set(mutation.random_program(vocab, "multi", rng).outputs)) for _ in range(100)]
    assert np.mean(distinct) > 2
