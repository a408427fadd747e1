"""NAS-Bench-101 cells (issue 11): the grammar of the `nas-cells` space.

A cell is a DAG of at most 7 vertices and 9 edges: the input, interior vertices each running one of
conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3 on the SUM of any set of earlier vertices, and the
output, which concatenates the interior vertices that feed it (and adds the projected input when the
input feeds it). Every vertex lies on a path from the input to the output.

As a Program: node 0 is the input; each interior vertex is a node of a variadic op (its inputs, a
set, are the vertices it sums); the last node is the output vertex, of the type `cell` that no op
reads, so no mutation can make a vertex read it. The space's rules add the edge limit and "every
vertex reaches the output". A cell is always spelled canonically (the smallest of its spellings
over every topological order of its vertices), so two spellings of one cell are one Program, and its
identity (fingerprint) is the benchmark's own module hash, the key of the cell in the NAS-Bench-101
data file.

Random cells and mutation are those of the benchmark's regularized-evolution baseline (its colab):
a random cell sets each of the 21 upper-triangular bits with probability 1/2 and draws each op,
retried until valid; a child flips each bit with probability rate/7 and gives each interior op,
with probability rate/5, another op, retried until valid (and, as every evolve mutation, unlike its
parent). The baseline mutates the parent's unpruned 7x7 spelling, dead vertices included; a
Program keeps only live vertices, so a parent with fewer than 7 is first spread over 7 slots at
random positions with random ops in the empty ones.

Two evaluators (option `evaluator`): `trained` (nas_training: the cell's network trained on
scikit-learn's digits, one compilation for every cell) and `tabular` (nas_tabular: the cell looked up
in a NAS-Bench-101 data file the user supplies). Exports: the NAS-Bench-101 spec and flax source.

This module is grammar: no JAX, no data file. The evaluators are built only where evaluations run.
"""

from __future__ import annotations

import functools
import json
from typing import Sequence

import numpy as np

from evolve import hookimpl
from evolve.errors import MutationError, OptionError, ProgramError
from evolve.ops import INPUT, Input, Op, ValueType, Vocabulary
from evolve.program import Node, Program
from evolve.space import Evaluator, SearchSpace

from evolve.search_spaces import nas_hash
from evolve.search_spaces.nas_hash import AVAILABLE_OPS, MAX_EDGES, MAX_VERTICES, OUTPUT

TENSOR = ValueType("tensor", shape=("height", "width", "channels"))
CELL = ValueType("cell", shape=("height", "width", "channels"))
SHORT = {"conv3x3-bn-relu": "conv3x3", "conv1x1-bn-relu": "conv1x1", "maxpool3x3": "maxpool3x3"}
EVALUATORS = ("trained", "tabular")
REPEATS = ("sample", "mean")
MAX_TRIES = 1000
UPPER = [(i, j) for j in range(MAX_VERTICES) for i in range(j)]  # the 21 edge slots


def vocabulary() -> Vocabulary:
    """The cell grammar: one input, the three interior ops (variadic sums), the output vertex."""
    interior = tuple(Op(name, (TENSOR,), TENSOR, variadic=(1, MAX_VERTICES - 2)) for name in AVAILABLE_OPS)
    output = Op(OUTPUT, (TENSOR,), CELL, variadic=(1, MAX_VERTICES - 1))
    return Vocabulary(
        inputs=(Input("input", TENSOR),),
        output_types=(CELL,),
        ops=interior + (output,),
        max_nodes=MAX_VERTICES,
        rules=(at_most_max_edges, every_vertex_reaches_the_output),
    )


def at_most_max_edges(program: Program) -> str | None:
    edges = program.num_edges
    return None if edges <= MAX_EDGES else f"{edges} edges; a cell has at most {MAX_EDGES}"


def every_vertex_reaches_the_output(program: Program) -> str | None:
    """Every vertex is read by the input's descendants (each vertex reads one earlier, so all are
    reached from the input), so it suffices that every vertex reaches the output."""
    dead = [i for i, live in enumerate(program.live()) if not live]
    return None if not dead else f"vertex {dead[0]} is not on a path to the output"


# ---------------------------------------------------------------------------- cells as specs


def spec(program: Program) -> tuple[nas_hash.Matrix, tuple[str, ...]]:
    """The cell as a NAS-Bench-101 spec: adjacency matrix (vertex i = node i) and op list."""
    n = len(program.nodes)
    matrix = [[0] * n for _ in range(n)]
    for v, node in enumerate(program.nodes):
        for u in node.inputs:
            matrix[u][v] = 1
    ops = tuple(node.op for node in program.nodes)  # the evolve op names are the benchmark's
    return tuple(map(tuple, matrix)), ops


def module_hash(program: Program) -> str:
    """The benchmark's module hash of the cell (the key of its results in the data file)."""
    return _spec_hash(*spec(program))


@functools.lru_cache(maxsize=1 << 16)
def _spec_hash(matrix: nas_hash.Matrix, ops: tuple[str, ...]) -> str:
    """nas_hash.spec_hash, remembered: a search hashes each cell several times (parent, child,
    fingerprint) and the hash is most of the cost of a mutation (64k entries: about 20 MB)."""
    return nas_hash.spec_hash(matrix, ops)


def from_spec(matrix: Sequence[Sequence[int]], ops: Sequence[str], space: str = "nas-cells") -> Program:
    """The cell of a NAS-Bench-101 spec, pruned and spelled canonically; ProgramError for a spec the
    benchmark would refuse."""
    problem = nas_hash.spec_problem(matrix, ops)
    if problem is not None:
        raise ProgramError(f"not a NAS-Bench-101 cell: {problem}")
    matrix, ops = nas_hash.prune(matrix, ops)
    order = canonical_order(matrix, ops)
    new = {old: k for k, old in enumerate(order)}
    nodes = [Node(INPUT)]
    for old in order[1:]:
        reads = tuple(sorted(new[u] for u in range(len(ops)) if matrix[u][old]))
        nodes.append(Node(ops[old], reads, unordered=True))
    return Program(tuple(nodes), (len(nodes) - 1,), space)


def canonical_order(matrix: nas_hash.Matrix, ops: Sequence[str]) -> list[int]:
    """The vertex order that spells the cell smallest: the minimum, over every topological order of
    the interior vertices, of the tuple of (op, sorted predecessors) of each vertex in turn. Two
    spellings of one cell have the same set of topological spellings, so the same minimum."""
    n = len(ops)
    rank = {op: k for k, op in enumerate(AVAILABLE_OPS)}
    preds = [[u for u in range(n) if matrix[u][v]] for v in range(n)]
    best: tuple | None = None
    best_order: list[int] = []

    def extend(order: list[int], placed: dict[int, int], code: tuple) -> None:
        nonlocal best, best_order
        if best is not None and code > best[: len(code)]:
            return  # this prefix already spells the cell bigger than the best found
        if len(order) == n - 1:
            last = (len(AVAILABLE_OPS), tuple(sorted(placed[u] for u in preds[n - 1])))
            full = code + (last,)
            if best is None or full < best:
                best, best_order = full, order + [n - 1]
            return
        for v in range(1, n - 1):
            if v not in placed and all(u in placed for u in preds[v]):
                entry = (rank[ops[v]], tuple(sorted(placed[u] for u in preds[v])))
                extend(order + [v], {**placed, v: len(order)}, code + (entry,))

    extend([0], {0: 0}, ())
    return best_order


# ---------------------------------------------------------------------------- the space


class NasCells(SearchSpace):
    """NAS-Bench-101 cells; fitness is the validation accuracy (0..1) from the chosen evaluator."""

    export_formats = ("nasbench", "flax", "json")

    def __init__(
        self,
        evaluator: str = "trained",
        data: str = "",
        epochs: int = 108,
        repeat: str = "sample",
        seed: int = 0,
        check_crc: bool = True,
        channels: int = 8,
        stacks: int = 3,
        cells_per_stack: int = 1,
        steps: int = 150,
        batch: int = 32,
        lr: float = 0.1,
        seeds: int = 1,
        mutation_rate: float = 1.0,
    ):
        """evaluator: "trained" (train the cell's network on scikit-learn's digits) or "tabular"
        (look the cell up in a NAS-Bench-101 data file).
        data: the data file (`nasbench_only108.tfrecord` or `nasbench_full.tfrecord`) for "tabular".
        epochs: the training budget looked up (108; 4, 12 or 36 in the full file).
        repeat: "sample" (one of the three training runs at random, as the benchmark's query) or
        "mean" (the mean of the runs, as BANANAS reports). seed: seeds the sampled runs.
        check_crc: check every record's CRCs when the file is read.
        channels: "trained": the stem's output channels, doubled at each later stack.
        stacks: "trained": stacks of cells, with a 2x2 max-pool downsampling between stacks.
        cells_per_stack: "trained": cells in each stack.
        steps: "trained": minibatch SGD steps of each training run.
        batch: "trained": images per minibatch.
        lr: "trained": the peak learning rate (cosine decay to zero over the steps).
        seeds: "trained": initialisations trained together (vmapped); fitness is their mean accuracy.
        mutation_rate: expected edge flips per 7 slots and op changes per 5 vertices (1.0 as the baseline)."""
        if evaluator not in EVALUATORS:
            raise OptionError(f"unknown evaluator {evaluator!r}; known: {', '.join(EVALUATORS)}")
        if evaluator == "tabular" and not data:
            raise OptionError("the tabular evaluator needs the NAS-Bench-101 data file: --space-opt data=PATH")
        if repeat not in REPEATS:
            raise OptionError(f"repeat must be one of {', '.join(REPEATS)}, got {repeat!r}")
        counts = {"epochs": epochs, "channels": channels, "stacks": stacks, "cells_per_stack": cells_per_stack,
                  "steps": steps, "batch": batch, "seeds": seeds}
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise OptionError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < float("inf"):
            raise OptionError(f"lr must be a positive number, got {lr!r}")
        if not isinstance(mutation_rate, (int, float)) or isinstance(mutation_rate, bool) or not 0 < mutation_rate <= 5:
            raise OptionError(f"mutation_rate must be in (0, 5], got {mutation_rate!r}")
        self.evaluator_name = evaluator
        self.data = data
        self.epochs = epochs
        self.repeat = repeat
        self.seed = seed
        self.check_crc = check_crc
        self.network = dict(channels=channels, stacks=stacks, cells_per_stack=cells_per_stack)
        self.training = dict(steps=steps, batch=batch, lr=float(lr), seeds=seeds)
        self.mutation_rate = float(mutation_rate)
        self._vocab = vocabulary()

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    def build_evaluator(self) -> Evaluator:
        """`trained`: loads the digits and compiles the masked network's training on the first cell
        (a minute or two on 2 cores at the defaults). `tabular`: reads the whole data file (about a
        minute for the real 499 MB file)."""
        if self.evaluator_name == "trained":
            from evolve.search_spaces.nas_training import NetworkShape, TrainedEvaluator

            return TrainedEvaluator(NetworkShape(**self.network), **self.training)
        from evolve.search_spaces.nas_tabular import TabularEvaluator

        return TabularEvaluator(self.data, self.epochs, self.repeat, self.seed, self.check_crc)

    # ------------------------------------------------------------------ programs
    def random_program(self, rng: np.random.Generator) -> Program:
        """The baseline's random cell: each edge slot 1/2, each op uniform, until valid."""
        for _ in range(MAX_TRIES):
            bits = rng.integers(0, 2, len(UPPER))
            matrix = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
            for (i, j), bit in zip(UPPER, bits):
                matrix[i][j] = int(bit)
            ops = [INPUT] + [AVAILABLE_OPS[k] for k in rng.integers(0, len(AVAILABLE_OPS), MAX_VERTICES - 2)] + [OUTPUT]
            if nas_hash.spec_problem(matrix, ops) is None:
                return from_spec(matrix, ops, self.name or "nas-cells")
        raise MutationError(f"no valid random cell in {MAX_TRIES} tries")

    def mutate(self, program: Program, rng: np.random.Generator) -> Program:
        """The baseline's mutation (see the module docstring), retried until valid and unlike the parent."""
        parent_hash = module_hash(program)
        for _ in range(MAX_TRIES):
            matrix, ops = _spread(program, rng)
            flips = rng.random(len(UPPER)) < self.mutation_rate / MAX_VERTICES
            for (i, j), flip in zip(UPPER, flips):
                matrix[i][j] ^= int(flip)
            for v in range(1, MAX_VERTICES - 1):
                if rng.random() < self.mutation_rate / (MAX_VERTICES - 2):
                    others = [op for op in AVAILABLE_OPS if op != ops[v]]
                    ops[v] = others[int(rng.integers(len(others)))]
            if nas_hash.spec_problem(matrix, ops) is None:
                child = from_spec(matrix, ops, program.space)
                # the digest also differs: a different cell can share its parent's digest (sharing vs
                # duplicated vertices) and an evolve mutation must change the digest
                if child.digest != program.digest and module_hash(child) != parent_hash:
                    return child
        raise MutationError(f"no valid mutation of cell {parent_hash} in {MAX_TRIES} tries")

    def fingerprint(self, program: Program) -> str:
        """The benchmark's module hash: one per cell, whatever its spelling."""
        return module_hash(program)

    # ------------------------------------------------------------------ text
    def describe(self, program: Program) -> str:
        """`28cfc787: 1=conv3x3(in) 2=maxpool3x3(in,1) out=(1,2)+in`: each vertex with what it sums."""
        def name(j: int) -> str:
            return "in" if j == 0 else str(j)

        nodes = program.nodes
        parts = [f"{v}={SHORT.get(n.op, n.op)}({','.join(map(name, n.inputs))})" for v, n in enumerate(nodes[1:-1], 1)]
        out = nodes[-1].inputs
        concat = ",".join(name(j) for j in out if j != 0)
        tail = ("(" + concat + ")" if concat else "") + ("+in" if 0 in out else "")
        return f"{module_hash(program)[:8]}: {' '.join(parts + ['out=' + tail])}"

    def export(self, program: Program, format: str) -> str:
        """`nasbench`: {"matrix", "ops", "module_hash"}; `nasbench.api.ModelSpec(d["matrix"], d["ops"])`
        builds the benchmark's spec of it. `flax`: the source of the `trained` evaluator's network
        for this cell (nas_export). `json`: the evolve program."""
        self.check_export_format(format)
        if format == "flax":
            from evolve.search_spaces.nas_export import flax_source

            return flax_source(program, self.describe(program), self.network, self.training)
        if format == "nasbench":
            matrix, ops = spec(program)
            rows = ",\n".join(f"    {json.dumps(list(row))}" for row in matrix)
            return f'{{\n  "matrix": [\n{rows}\n  ],\n  "ops": {json.dumps(list(ops))},\n  "module_hash": "{module_hash(program)}"\n}}\n'
        return super().export(program, format)


def _spread(program: Program, rng: np.random.Generator) -> tuple[list[list[int]], list[str]]:
    """The cell as a 7x7 spec: its interior vertices at random slots (in order), the empty slots
    given random ops and no edges, the output last."""
    matrix, ops = spec(program)
    interior = len(ops) - 2
    slots = sorted(int(s) for s in rng.choice(np.arange(1, MAX_VERTICES - 1), size=interior, replace=False))
    where = [0, *slots, MAX_VERTICES - 1]
    full = [[0] * MAX_VERTICES for _ in range(MAX_VERTICES)]
    for u in range(len(ops)):
        for v in range(len(ops)):
            full[where[u]][where[v]] = matrix[u][v]
    new_ops = [INPUT] + [AVAILABLE_OPS[k] for k in rng.integers(0, len(AVAILABLE_OPS), MAX_VERTICES - 2)] + [OUTPUT]
    for v in range(1, len(ops) - 1):
        new_ops[where[v]] = ops[v]
    return full, new_ops


@hookimpl
def evolve_search_spaces():
    return {"nas-cells": NasCells}
