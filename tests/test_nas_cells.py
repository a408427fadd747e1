"""The nas-cells space: cells as programs, canonical spelling, the baseline's random cells and
mutation, the benchmark hash as identity, export, and the tabular evaluator on small data files."""

import collections
import json
import subprocess
import sys

import numpy as np
import pytest

from evolve.errors import EvolveError, OptionError, ProgramError
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.program import Node, Program
from evolve.testing import check_search_space
from evolve.search_spaces import nas_cells as nc
from evolve.search_spaces import nas_hash as nh
from evolve.search_spaces import nasbench_file as nf

from test_nas_hash import CHAIN_OF_3X3, INCEPTION_FILE, INCEPTION_NOTEBOOK

INCEPTION_HASH = "28cfc7874f6d200472e1a9dcd8650aa0"
C3, C1, MP = nh.AVAILABLE_OPS


def space(**options) -> nc.NasCells:
    """The space with the tabular evaluator (a grammar only, unless `data` names a real file)."""
    return PluginManager().make_space(SpaceSpec("nas-cells", {"evaluator": "tabular", "data": "unused.tfrecord", **options}))


def runs(cell_hash: str, validation: list[float], seconds: float = 100.0) -> list[nf.Record]:
    """One record per training run of a cell (the spelling stored does not matter to lookups)."""
    matrix, ops = INCEPTION_FILE
    evaluations = lambda v: (nf.EvaluationData(0, 0, 0.1, 0.1, 0.1), nf.EvaluationData(54, seconds / 2, 0.5, v - 0.1, v - 0.1),  # noqa: E731
                             nf.EvaluationData(108, seconds, 1.0, v, v - 0.01))
    return [nf.Record(cell_hash, 108, tuple(map(tuple, matrix)), tuple(ops), nf.ModelMetrics(evaluations(v), 1000 + k, seconds))
            for k, v in enumerate(validation)]


@pytest.fixture
def data_file(tmp_path):
    """A data file with the Inception-like cell (3 runs) and the chain of 3x3 convolutions (2 runs)."""
    path = tmp_path / "nasbench_small.tfrecord"
    nf.write_file(path, runs(INCEPTION_HASH, [0.93, 0.94, 0.95], 1155.0) + runs(nh.spec_hash(*CHAIN_OF_3X3), [0.80, 0.82], 300.0))
    return str(path)


# ---------------------------------------------------------------------------- grammar


def test_two_spellings_are_one_program_with_the_benchmark_hash():
    a, b = nc.from_spec(*INCEPTION_NOTEBOOK), nc.from_spec(*INCEPTION_FILE)
    assert a.nodes == b.nodes and a == b
    assert space().fingerprint(a) == INCEPTION_HASH
    assert [n.op for n in a.nodes[1:-1]].count(C3) == 3
    space().validate(a)


def test_every_spelling_of_random_cells_is_the_same_program():
    rng = np.random.default_rng(1)
    s = space()
    for _ in range(40):
        program = s.random_program(rng)
        matrix, ops = nc.spec(program)
        n = len(ops)
        for _ in range(6):
            order = [0, *(rng.permutation(np.arange(1, n - 1))), n - 1]
            permuted = np.asarray(matrix)[np.ix_(order, order)]
            if np.tril(permuted).any():
                continue  # not a topological order: not a spelling
            assert nc.from_spec(permuted, [ops[i] for i in order]).nodes == program.nodes


def test_cells_that_differ_only_in_sharing_are_different_programs():
    """One conv1x1 read by two conv3x3, or two conv1x1 each read by one: Program.digest (a Merkle
    hash) cannot tell them apart, the benchmark hash and the canonical spelling can."""
    shared = nc.from_spec(
        [[0, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]], ["input", C1, C3, C3, "output"])
    split = nc.from_spec(
        [[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 1], [0] * 6],
        ["input", C1, C1, C3, C3, "output"])
    assert shared.digest == split.digest  # the limit of the generic hash
    assert shared.nodes != split.nodes and nc.module_hash(shared) != nc.module_hash(split)


def test_rules_of_a_cell():
    s = space()
    ten_edges = Program(
        (Node("input"), Node(C3, (0,), unordered=True), Node(C3, (0, 1), unordered=True),
         Node(C3, (0, 1, 2), unordered=True), Node("output", (0, 1, 2, 3), unordered=True)), (4,), "nas-cells")
    with pytest.raises(ProgramError, match="10 edges; a cell has at most 9"):
        s.validate(ten_edges)
    dead = Program((Node("input"), Node(C3, (0,), unordered=True), Node(MP, (0,), unordered=True),
                    Node("output", (1,), unordered=True)), (3,), "nas-cells")
    with pytest.raises(ProgramError, match="vertex 2 is not on a path to the output"):
        s.validate(dead)
    with pytest.raises(ProgramError, match="the input is not connected to the output"):
        nc.from_spec([[0, 0], [0, 0]], ["input", "output"])
    with pytest.raises(ProgramError, match="8 vertices"):
        nc.from_spec(np.eye(8, k=1, dtype=int), ["input"] + [C3] * 6 + ["output"])
    reads_output = Program((Node("input"), Node("output", (0,), unordered=True), Node(C3, (1,), unordered=True),
                            Node("output", (2,), unordered=True)), (3,), "nas-cells")
    with pytest.raises(ProgramError, match="must be of type tensor"):
        s.validate(reads_output)


def test_random_cells_are_valid_reproducible_and_varied():
    s = space()
    cells = [s.random_program(np.random.default_rng(7)) for _ in range(2)]
    assert cells[0].nodes == cells[1].nodes
    rng = np.random.default_rng(0)
    many = [s.random_program(rng) for _ in range(300)]
    for program in many:
        s.validate(program)
        assert nh.spec_problem(*nc.spec(program)) is None
        assert nc.from_spec(*nc.spec(program)).nodes == program.nodes  # spelled canonically
    assert {len(p.nodes) for p in many} >= {2, 3, 4, 5, 6}
    assert {n.op for p in many for n in p.nodes[1:-1]} == set(nh.AVAILABLE_OPS)


def test_mutation_keeps_cells_valid_changes_them_and_is_reproducible():
    s = space()
    parent = nc.from_spec(*INCEPTION_NOTEBOOK)
    children = [s.mutate(parent, np.random.default_rng([3, k])) for k in range(200)]
    for child in children:
        s.validate(child)
        assert nc.module_hash(child) != INCEPTION_HASH and child.digest != parent.digest
    assert s.mutate(parent, np.random.default_rng([3, 0])).nodes == children[0].nodes
    assert len({nc.module_hash(c) for c in children}) > 100
    tiny = nc.from_spec([[0, 1], [0, 0]], ["input", "output"])
    assert all(len(s.mutate(tiny, np.random.default_rng(k)).nodes) > 2 for k in range(20))


def test_lower_mutation_rate_changes_less():
    parent = nc.from_spec(*INCEPTION_NOTEBOOK)

    def changed_slots(rate):
        s = space(mutation_rate=rate)
        distances = []
        for k in range(150):
            child = s.mutate(parent, np.random.default_rng([5, k]))
            distances.append(abs(child.num_edges - parent.num_edges) + abs(len(child.nodes) - len(parent.nodes)))
        return np.mean(distances)

    assert changed_slots(0.2) < changed_slots(2.0)


def test_spreading_a_cell_over_seven_slots_keeps_the_cell():
    for k, spelling in enumerate([INCEPTION_NOTEBOOK, CHAIN_OF_3X3, ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"])]):
        program = nc.from_spec(*spelling)
        matrix, ops = nc._spread(program, np.random.default_rng(k))
        assert len(ops) == 7 and nh.spec_hash(matrix, ops) == nc.module_hash(program)


def test_describe_and_export():
    s = space()
    chain = nc.from_spec(*CHAIN_OF_3X3)
    assert s.describe(chain) == "b3bc0991: 1=conv3x3(in) 2=conv3x3(1) 3=conv3x3(2) 4=conv3x3(3) 5=conv3x3(4) out=(5)"
    skip = nc.from_spec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"])
    assert s.describe(skip).endswith(": 1=maxpool3x3(in) out=(1)+in")
    for program in (chain, nc.from_spec(*INCEPTION_FILE)):
        spec = json.loads(s.export(program, "nasbench"))
        assert set(spec) == {"matrix", "ops", "module_hash"}
        assert spec["module_hash"] == nh.spec_hash(spec["matrix"], spec["ops"]) == s.fingerprint(program)
        assert nc.from_spec(spec["matrix"], spec["ops"]).nodes == program.nodes
        assert Program.from_json(s.export(program, "json")) == program
    with pytest.raises(OptionError, match="cannot export 'onnx'"):
        s.export(chain, "onnx")


def test_options_are_checked():
    with pytest.raises(OptionError, match="needs the NAS-Bench-101 data file"):
        PluginManager().make_space(SpaceSpec("nas-cells", {"evaluator": "tabular"}))
    with pytest.raises(OptionError, match="unknown evaluator 'oracle'"):
        space(evaluator="oracle")
    with pytest.raises(OptionError, match="repeat must be one of sample, mean"):
        space(repeat="max")
    with pytest.raises(OptionError, match="channels must be a positive integer, got 0"):
        space(evaluator="trained", channels=0)
    with pytest.raises(OptionError, match="lr must be a positive number"):
        space(evaluator="trained", lr=-1.0)


def test_grammar_loads_without_jax():
    code = ("import sys; from evolve.search_spaces import nas_cells; nas_cells.NasCells(data='x');"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'optax')], 'jax imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------- tabular evaluator


def test_tabular_query_draws_one_run_at_random_reproducibly(data_file):
    inception = nc.from_spec(*INCEPTION_NOTEBOOK)
    evaluations = space(data=data_file, seed=1).evaluate([inception] * 30)
    runs_seen = collections.Counter(e.metrics["repeat"] for e in evaluations)
    assert set(runs_seen) == {0, 1, 2}
    for e in evaluations:
        k = e.metrics["repeat"]
        assert e.fitness == e.metrics["validation_accuracy"] == [0.93, 0.94, 0.95][k]
        assert e.metrics["test_accuracy"] == pytest.approx([0.92, 0.93, 0.94][k])
        assert e.metrics["validation_accuracy_mean"] == pytest.approx(0.94)
        assert e.metrics["trainable_parameters"] == 1000 and e.metrics["training_seconds"] == 1155.0
        assert e.metrics["module_hash"] == INCEPTION_HASH and e.error is None
    again = space(data=data_file, seed=1).evaluate([inception] * 30)
    other_seed = space(data=data_file, seed=2).evaluate([inception] * 30)
    assert [e.metrics["repeat"] for e in again] == [e.metrics["repeat"] for e in evaluations]
    assert [e.metrics["repeat"] for e in other_seed] != [e.metrics["repeat"] for e in evaluations]


def test_tabular_mean_and_absent_cells(data_file):
    chain, inception = nc.from_spec(*CHAIN_OF_3X3), nc.from_spec(*INCEPTION_FILE)
    absent = nc.from_spec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"])
    mean, missing, chained = space(data=data_file, repeat="mean").evaluate([inception, absent, chain])
    assert mean.fitness == pytest.approx(0.94) and mean.metrics["repeat"] == -1
    assert chained.fitness == pytest.approx(0.81) and chained.metrics["training_seconds"] == 300.0
    assert missing.failed and missing.metrics == {"module_hash": nc.module_hash(absent)}
    assert missing.error == f"cell not in {data_file} (at 108 epochs)"


def test_tabular_bad_file_is_one_line_when_the_evaluator_is_built(tmp_path):
    s = space(data=str(tmp_path / "nope.tfrecord"))
    s.validate(s.random_program(np.random.default_rng(0)))  # the grammar works without the file
    with pytest.raises(EvolveError, match=r"nope\.tfrecord: cannot be read"):
        s.build_evaluator()


def test_space_keeps_the_contract(tmp_path):
    """evolve.testing's contract check; the file holds the cells of the random programs it draws."""
    randoms = [space().random_program(rng) for rng in [np.random.default_rng(0)] for _ in range(8)]
    path = tmp_path / "contract.tfrecord"
    nf.write_file(path, [r for p in randoms for r in runs(nc.module_hash(p), [0.9, 0.91, 0.92])])
    check_search_space(nc.NasCells, {"evaluator": "tabular", "data": str(path)}, programs=8)
