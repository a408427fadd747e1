"""The NAS-Bench-101 graph hash and ModelSpec-style pruning.

The expected hashes were computed by the benchmark's own `ModelSpec.hash_spec` (nasbench/lib, run
on these specs when this test was written; it also agreed with this module on 14,960 random valid
specs). The Inception-like cell is the benchmark's notebook example, spelled once as the notebook
writes it and once as the data file stores it (the notebook prints the file's spelling)."""

import itertools

import numpy as np
import pytest

from evolve.search_spaces import nas_hash as nh

C3, C1, MP = nh.AVAILABLE_OPS

INCEPTION_NOTEBOOK = (
    [[0, 1, 1, 1, 0, 1, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 0]],
    ["input", C1, C3, C3, C3, MP, "output"],
)
INCEPTION_FILE = (
    [[0, 1, 1, 1, 1, 0, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 1, 0],
     [0, 0, 0, 0, 0, 0, 1],
     [0, 0, 0, 0, 0, 0, 0]],
    ["input", C3, C1, MP, C3, C3, "output"],
)
CHAIN_OF_3X3 = (np.eye(7, k=1, dtype=int), ["input"] + [C3] * 5 + ["output"])


def test_known_hashes():
    assert nh.spec_hash(*INCEPTION_NOTEBOOK) == "28cfc7874f6d200472e1a9dcd8650aa0"
    assert nh.spec_hash(*INCEPTION_FILE) == "28cfc7874f6d200472e1a9dcd8650aa0"
    assert nh.spec_hash(*CHAIN_OF_3X3) == "b3bc0991ac661443a583796ce582f11f"


def permuted(matrix, ops, order):
    """The spec with interior vertices renumbered: new vertex k is old vertex order[k]."""
    matrix = np.asarray(matrix)
    return matrix[np.ix_(order, order)], [ops[i] for i in order]


def topological_orders(matrix):
    n = len(matrix)
    for interior in itertools.permutations(range(1, n - 1)):
        order = [0, *interior, n - 1]
        if not np.tril(np.asarray(matrix)[np.ix_(order, order)]).any():
            yield order


def test_every_spelling_of_a_cell_hashes_alike_and_other_cells_differ():
    matrix, ops = INCEPTION_NOTEBOOK
    spellings = list(topological_orders(matrix))
    assert len(spellings) > 20
    assert {nh.spec_hash(*permuted(matrix, ops, order)) for order in spellings} == {"28cfc7874f6d200472e1a9dcd8650aa0"}
    other_op = ["input", C1, C3, C3, C1, MP, "output"]
    moved_edge = np.array(matrix)
    moved_edge[0, 5], moved_edge[1, 5] = 0, 1
    assert nh.spec_hash(matrix, other_op) != nh.spec_hash(*INCEPTION_NOTEBOOK)
    assert nh.spec_hash(moved_edge, ops) != nh.spec_hash(*INCEPTION_NOTEBOOK)


def test_hash_module_cases_of_the_benchmark_tests():
    diamond = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert nh.hash_module(diamond, [-1, 1, 2, -2]) == nh.hash_module(diamond, [-1, 2, 1, -2])
    m1 = [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    m2 = [[0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    m3 = [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    h1, h2, h3 = nh.hash_module(m1, [-1, 1, 2, 3, -2]), nh.hash_module(m2, [-1, 2, 3, 1, -2]), nh.hash_module(m3, [-1, 2, 1, 3, -2])
    assert h1 == h2 == h3
    assert nh.hash_module(m1, [-1, 2, 3, 1, -2]) != h1
    assert nh.hash_module(m1, [-1, 2, 1, 3, -2]) != h1


@pytest.mark.parametrize(
    "matrix, ops, expected",
    [  # the benchmark's model_spec_test cases
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [0, 1, 2], ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [0, 1, 2])),
        ([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], [1, 2, 3, 4], ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [1, 2, 4])),
        ([[0, 1, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]], [1, 2, 3, 4, 5],
         ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [1, 2, 5])),
        ([[0, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [1, 2, 3, 4], ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [1, 3, 4])),
        ([[0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], [1, 2, 3, 4], ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [1, 3, 4])),
        ([[0, 0], [0, 0]], [0, 0], None),
        ([[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]], [1, 2, 3, 4], None),
        ([[0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], [1, 2, 3, 4], None),
    ],
)
def test_pruning_as_model_spec(matrix, ops, expected):
    pruned = nh.prune(matrix, ops)
    if expected is None:
        assert pruned is None
    else:
        assert pruned == (tuple(map(tuple, expected[0])), tuple(expected[1]))


def test_spec_problems():
    ten_edges = np.triu(np.ones((5, 5), dtype=int), 1)
    assert nh.spec_problem(ten_edges, ["input", C3, C3, C3, "output"]) == "10 edges after pruning; at most 9"
    eight = np.eye(8, k=1, dtype=int)
    assert nh.spec_problem(eight, ["input"] + [C3] * 6 + ["output"]) == "8 vertices after pruning; at most 7"
    assert "not connected" in nh.spec_problem([[0, 0], [0, 0]], ["input", "output"])
    assert "upper triangular" in nh.spec_problem([[0, 1], [1, 0]], ["input", "output"])
    assert "unsupported op 'conv5x5'" in nh.spec_problem([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"])
    assert nh.spec_problem([[0, 1], [0, 0]], ["input", "output"]) is None  # the input fed straight to the output
    with pytest.raises(ValueError, match="10 edges"):
        nh.spec_hash(ten_edges, ["input", C3, C3, C3, "output"])
