"""NAS-Bench-101 cell specs: pruning, the benchmark's validity checks and its graph hash.

A spec is an upper-triangular 0/1 adjacency matrix (vertex 0 the input, the last the output) and one
op per vertex. As the benchmark's `ModelSpec` does, a spec is first pruned: every vertex that is not
on a path from the input to the output is removed. The module hash is `graph_util.hash_module` of
the benchmark, an isomorphism-invariant hash (Weisfeiler-Lehman style rounds of MD5 over in- and
out-neighbours), so two spellings of one cell hash alike and a cell can be looked up in the
benchmark's data file by it. Plain Python: this is grammar, loaded wherever programs are handled.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

INPUT = "input"
OUTPUT = "output"
#: the interior ops, in the benchmark's order (`config['available_ops']`): the hash labels them 0, 1, 2
AVAILABLE_OPS = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
MAX_VERTICES = 7
MAX_EDGES = 9

Matrix = tuple[tuple[int, ...], ...]


def as_matrix(matrix: Sequence[Sequence[int]]) -> Matrix:
    """A square 0/1 matrix as a tuple of tuples of ints (from lists or a numpy array)."""
    rows = tuple(tuple(int(bit) for bit in row) for row in matrix)
    if any(len(row) != len(rows) for row in rows):
        raise ValueError(f"the adjacency matrix must be square, got rows of lengths {[len(r) for r in rows]}")
    if any(bit not in (0, 1) for row in rows for bit in row):
        raise ValueError("the adjacency matrix must hold only 0 and 1")
    return rows


def prune(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> tuple[Matrix, tuple[str, ...]] | None:
    """The spec without the vertices that are not on an input -> output path (as `ModelSpec` prunes),
    or None when the input does not reach the output. Raises ValueError for a matrix that is not
    square and upper triangular or ops of the wrong length."""
    matrix = as_matrix(matrix)
    n = len(matrix)
    if len(ops) != n:
        raise ValueError(f"{len(ops)} ops for a {n}x{n} adjacency matrix")
    if any(matrix[i][j] for i in range(n) for j in range(i + 1)):
        raise ValueError("the adjacency matrix must be upper triangular (an edge only from a vertex to a later one)")
    if n < 2:
        return None
    from_input = _reachable(0, lambda v: (w for w in range(v + 1, n) if matrix[v][w]))
    to_output = _reachable(n - 1, lambda v: (w for w in range(v) if matrix[w][v]))
    keep = sorted(from_input & to_output)
    if len(keep) < 2:
        return None
    return tuple(tuple(matrix[i][j] for j in keep) for i in keep), tuple(ops[i] for i in keep)


def _reachable(start: int, neighbours) -> set[int]:
    seen, frontier = {start}, [start]
    while frontier:
        for w in neighbours(frontier.pop()):
            if w not in seen:
                seen.add(w)
                frontier.append(w)
    return seen


def spec_problem(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> str | None:
    """Why the benchmark would refuse this spec (`api.NASBench.is_valid` after pruning), or None."""
    try:
        pruned = prune(matrix, ops)
    except ValueError as e:
        return str(e)
    if pruned is None:
        return "the input is not connected to the output"
    matrix, ops = pruned
    edges = sum(map(sum, matrix))
    if len(ops) > MAX_VERTICES:
        return f"{len(ops)} vertices after pruning; at most {MAX_VERTICES}"
    if edges > MAX_EDGES:
        return f"{edges} edges after pruning; at most {MAX_EDGES}"
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        return f"the first op must be {INPUT!r} and the last {OUTPUT!r}, got {ops[0]!r} and {ops[-1]!r}"
    unknown = [op for op in ops[1:-1] if op not in AVAILABLE_OPS]
    if unknown:
        return f"unsupported op {unknown[0]!r}; the ops are {', '.join(AVAILABLE_OPS)}"
    return None


def hash_module(matrix: Sequence[Sequence[int]], labels: Sequence[int]) -> str:
    """`graph_util.hash_module`: each vertex starts as md5 of (out-degree, in-degree, label), then V
    rounds of md5(sorted in-neighbour hashes | sorted out-neighbour hashes | own hash); the
    fingerprint is md5 of the sorted vertex hashes. The strings hashed are exactly the benchmark's."""
    matrix = as_matrix(matrix)
    n = len(matrix)
    if len(labels) != n:
        raise ValueError(f"{len(labels)} labels for a {n}x{n} adjacency matrix")
    ins = [[w for w in range(n) if matrix[w][v]] for v in range(n)]
    outs = [[w for w in range(n) if matrix[v][w]] for v in range(n)]
    hashes = [_md5(str((len(outs[v]), len(ins[v]), int(labels[v])))) for v in range(n)]
    for _ in range(n):
        hashes = [
            _md5("".join(sorted(hashes[w] for w in ins[v])) + "|" + "".join(sorted(hashes[w] for w in outs[v])) + "|" + hashes[v])
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)))


def spec_hash(matrix: Sequence[Sequence[int]], ops: Sequence[str]) -> str:
    """The module hash of a spec (`ModelSpec(matrix, ops).hash_spec(available_ops)`): the key of
    its cell in the benchmark's data. Raises ValueError for a spec the benchmark would refuse."""
    problem = spec_problem(matrix, ops)
    if problem is not None:
        raise ValueError(problem)
    matrix, ops = prune(matrix, ops)
    labels = [-1] + [AVAILABLE_OPS.index(op) for op in ops[1:-1]] + [-2]
    return hash_module(matrix, labels)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()
