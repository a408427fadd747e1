"""Generic typed mutations: always valid, always different, or a clear error."""

import gzip
import importlib.util
import json
import pathlib

import numpy as np
import pytest

from evolve import mutation
from evolve.errors import MutationError
from evolve.ops import Input, Op, Vocabulary, elementwise_ops
from evolve.program import Node, Program
from evolve.search_spaces import optimizer_programs

GOLDEN_DIR = pathlib.Path(__file__).parent / "golden"
_spec = importlib.util.spec_from_file_location("make_golden", GOLDEN_DIR / "make_mutation_golden.py")
make_golden = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_golden)

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


def test_built_in_vocabularies_mutate_exactly_as_the_first_version():
    """Replays tests/golden/mutation_golden.json.gz (written by the code before typed values): the same
    programs, digests and Generator state, so published searches stay reproducible."""
    golden = json.loads(gzip.open(GOLDEN_DIR / "mutation_golden.json.gz", "rt").read())
    vocabularies = make_golden.vocabularies()
    for case in golden["cases"]:
        space, vocab = vocabularies[case["name"]]
        rng = np.random.default_rng(case["seed"])
        if case["kind"] == "random+each":
            randoms = [mutation.random_program(vocab, space, rng) for _ in range(golden["random_programs"])]
            programs = randoms + [mutation.mutate(p, vocab, rng) for p in randoms]
        else:
            start = optimizer_programs.SEEDS[case["start"]]() if case["start"] != "random" else None
            programs = [start or mutation.random_program(vocab, space, rng)]
            for _ in range(golden["chain"]):
                programs.append(mutation.mutate(programs[-1], vocab, rng))
        where = f"{case['name']} {case['kind']} {case['start']}"
        for k, (program, want) in enumerate(zip(programs, case["programs"], strict=True)):
            data = program.to_dict()
            assert (data["nodes"], data["outputs"]) == (want["nodes"], want["outputs"]), f"{where}: program {k}"
            assert program.digest == want["digest"], f"{where}: digest of program {k}"
        assert int(rng.integers(2**62)) == case["next_draw"], f"{where}: the Generator advanced differently"
