"""Programs as graphs: any Program of any space becomes a padded jraph GraphsTuple.

Node features: a one-hot of the node's op over the space's vocabulary (inputs get one slot each, so
`x1` and `x2` differ), its kind (input / const / op), whether it is an output, a squashed constant
value, and random-walk structural encodings (diag of the k-step random-walk matrix, k = 1..K).
Edges run from argument to consumer and back; edge features are one-hot (argument position,
direction), so `a - b` and `b - a` are different graphs.

Batches use a fixed layout so the model compiles a bounded number of times: every graph occupies
`budget` node slots (the smallest power of two, at least 4, that fits the largest graph) and
`budget * 2 * max_arity` edge slots, and the number of graphs is padded to a size of the ladder
8, 12, 16, 24, 32, 48... The model reads `budget` and the graph count from the array shapes.
Programs are small (on Nguyen problems about 3 live nodes, rarely more than 8), so tight slots
are most of what a batch costs to embed.

Encoding is numpy throughout: the random walks of every program encoded together are one stack of
matrix products, and a batch is assembled by a few concatenations and scatters, not per graph.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Sequence

import jraph
import numpy as np

from evolve.ops import CONST, INPUT, Vocabulary
from evolve.program import Program

SMALLEST_BUDGET = 4
SMALLEST_BATCH = 8
KINDS = (INPUT, CONST, "op")


@dataclasses.dataclass(frozen=True)
class EncodedProgram:
    """One program as arrays: node features [n, F]; edges (sender, receiver, type) [m] each."""

    nodes: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    edge_types: np.ndarray

    @property
    def n_node(self) -> int:
        return self.nodes.shape[0]


def pad_count(n: int, smallest: int) -> int:
    """The next power of two that is at least n and at least `smallest`."""
    size = smallest
    while size < n:
        size *= 2
    return size


def ladder_count(n: int, smallest: int = SMALLEST_BATCH) -> int:
    """The smallest size of the ladder smallest, 1.5 x smallest, 2 x smallest, 3 x smallest... that
    is at least n: at most a third of a batch is padding, with two shapes per doubling."""
    size = smallest
    while size < n:
        size = size * 3 // 2 if size & (size - 1) == 0 else size * 4 // 3
    return size


class GraphEncoder:
    """Encodes the programs of one vocabulary; remembers recent encodings (by spelling, since a+b
    and b+a share a digest but not an encoding), so an encoding is a function of the program alone."""

    def __init__(self, vocab: Vocabulary, rw_steps: int = 8, cache_size: int = 4096):
        self.vocab = vocab
        self.rw_steps = rw_steps
        self.max_arity = max([op.arity for op in vocab.ops] + [1])
        self._slot = {name: len(vocab.inputs) + k for k, name in enumerate(vocab.op_names)}
        self._n_op_slots = len(vocab.inputs) + len(vocab.op_names)
        self.node_dim = self._n_op_slots + len(KINDS) + 2 + rw_steps
        self.edge_dim = 2 * self.max_arity
        self._cache: collections.OrderedDict[tuple, EncodedProgram] = collections.OrderedDict()
        self._cache_size = cache_size

    # ------------------------------------------------------------------ programs
    def encode(self, program: Program) -> EncodedProgram:
        return self.encode_many([program])[0]

    def encode_many(self, programs: Sequence[Program]) -> list[EncodedProgram]:
        """Encodings of the programs, from the cache where it has them; the rest encoded together."""
        keys = [(p.nodes, p.outputs) for p in programs]
        found = [self._cache.get(key) for key in keys]
        missing = {key: p for key, p, hit in zip(keys, programs, found) if hit is None}
        if missing:
            fresh = dict(zip(missing, self.encode_uncached(list(missing.values()))))
            self._cache.update(fresh)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            found = [fresh[key] if hit is None else hit for key, hit in zip(keys, found)]
        return found

    def encode_uncached(self, programs: Sequence[Program]) -> list[EncodedProgram]:
        """Encodings computed afresh, touching no shared state (safe from a training thread). All
        programs at once: one pass over their nodes builds every feature row and edge."""
        pruned = [p.pruned() for p in programs]
        counts = np.array([len(p.nodes) for p in pruned], np.int64)
        starts = np.cumsum(counts) - counts
        nodes = [node for p in pruned for node in p.nodes]
        local = np.arange(len(nodes)) - np.repeat(starts, counts)
        ops = [node.op for node in nodes]
        slots = [i if op == INPUT else self._slot[op] for i, op in zip(local.tolist(), ops)]
        kinds = [0 if op == INPUT else 1 if op == CONST else 2 for op in ops]
        x = np.zeros((len(nodes), self.node_dim), np.float32)
        rows = np.arange(len(nodes))
        x[rows, slots] = 1.0
        x[rows, np.add(kinds, self._n_op_slots)] = 1.0
        x[[start + o for p, start in zip(pruned, starts.tolist()) for o in set(p.outputs)], self._n_op_slots + len(KINDS)] = 1.0
        constants = [k for k, node in enumerate(nodes) if node.value is not None]
        if constants:
            x[constants, self._n_op_slots + len(KINDS) + 1] = np.tanh([nodes[k].value for k in constants])
        # each argument is two edges: forward (type = its position), then backward (max_arity + position)
        args = np.array([(g, j, i, pos) for g, p in enumerate(pruned) for i, node in enumerate(p.nodes)
                         for pos, j in enumerate(node.inputs)], np.int64).reshape(-1, 4)
        graph_of_edge = np.repeat(args[:, 0], 2)
        senders = np.stack([args[:, 1], args[:, 2]], 1).reshape(-1).astype(np.int32)
        receivers = np.stack([args[:, 2], args[:, 1]], 1).reshape(-1).astype(np.int32)
        types = np.stack([args[:, 3], args[:, 3] + self.max_arity], 1).reshape(-1).astype(np.int8)
        if self.rw_steps and len(pruned):
            walks = random_walk_encodings(counts, graph_of_edge, senders, receivers, self.rw_steps)
            x[:, -self.rw_steps :] = walks[np.repeat(np.arange(len(pruned)), counts), local]
        edge_counts = np.bincount(args[:, 0], minlength=len(pruned)) * 2
        edge_starts = np.cumsum(edge_counts) - edge_counts
        return [
            EncodedProgram(x[s : s + n], senders[es : es + m], receivers[es : es + m], types[es : es + m])
            for s, n, es, m in zip(starts.tolist(), counts.tolist(), edge_starts.tolist(), edge_counts.tolist())
        ]

    # ------------------------------------------------------------------ batches
    def batch(self, programs: Sequence[Program], min_graphs: int = SMALLEST_BATCH) -> jraph.GraphsTuple:
        """The programs as one padded GraphsTuple (layout in the module docstring)."""
        encoded = self.encode_many(programs)
        return self.assemble(encoded, ladder_count(len(encoded), min_graphs), self.budget_for(encoded))

    @staticmethod
    def budget_for(encoded: Sequence[EncodedProgram]) -> int:
        return pad_count(max([e.n_node for e in encoded] + [1]), SMALLEST_BUDGET)

    def assemble(self, encoded: Sequence[EncodedProgram | None], n_graphs: int, budget: int) -> jraph.GraphsTuple:
        """Encoded programs in `n_graphs` graph slots of `budget` nodes each; None (and every slot
        past the list's end) is an empty slot."""
        present = [e for e in encoded if e is not None]
        if len(encoded) > n_graphs or self.budget_for(present) > budget:
            raise ValueError(f"{len(encoded)} graphs do not fit {n_graphs} slots of {budget} nodes")
        edge_budget = budget * 2 * self.max_arity
        n_node = np.zeros(n_graphs, np.int32)
        n_edge = np.zeros(n_graphs, np.int32)
        n_node[: len(encoded)] = [0 if e is None else e.n_node for e in encoded]
        n_edge[: len(encoded)] = [0 if e is None else len(e.senders) for e in encoded]
        nodes = np.zeros((n_graphs * budget, self.node_dim), np.float32)
        edges = np.zeros((n_graphs * edge_budget, self.edge_dim), np.float32)
        node_offset = np.repeat(np.arange(n_graphs, dtype=np.int32) * budget, edge_budget)
        senders, receivers = node_offset.copy(), node_offset.copy()
        if present:
            node_rows = _rows(n_node, budget)
            edge_rows = _rows(n_edge, edge_budget)
            nodes[node_rows] = np.concatenate([e.nodes for e in present])
            edges[edge_rows, np.concatenate([e.edge_types for e in present])] = 1.0
            senders[edge_rows] += np.concatenate([e.senders for e in present])
            receivers[edge_rows] += np.concatenate([e.receivers for e in present])
        return jraph.GraphsTuple(nodes=nodes, edges=edges, senders=senders, receivers=receivers,
                                 n_node=n_node, n_edge=n_edge, globals=None)


def _rows(counts: np.ndarray, slots: int) -> np.ndarray:
    """Flat row of each item when graph g's `counts[g]` items fill the first rows of its `slots`."""
    starts = np.repeat(np.arange(len(counts)) * slots - np.cumsum(counts) + counts, counts)
    return starts + np.arange(counts.sum())


def random_walk_encodings(counts: np.ndarray, graph_of_edge: np.ndarray, senders: np.ndarray, receivers: np.ndarray,
                          steps: int) -> np.ndarray:
    """[graphs, max count, steps]: for each node of each graph (counts[g] nodes, edges given by graph
    and local sender and receiver), the probability that a random walk on the undirected graph
    returns to its start after k = 1..steps steps; it tells apart structures that one-hot features
    cannot. The graphs are one zero-padded stack (padding nodes have no edges, so they do not change
    the walks of real ones)."""
    size = int(max(counts.max(initial=0), 1))
    adjacency = np.zeros((len(counts), size, size), np.float64)
    adjacency[graph_of_edge, senders, receivers] = 1.0
    degree = adjacency.sum(axis=2, keepdims=True)
    walk = np.divide(adjacency, degree, out=np.zeros_like(adjacency), where=degree > 0)
    out = np.zeros((len(counts), size, steps), np.float32)
    power = walk
    for k in range(steps):
        if k:
            power = power @ walk
        out[:, :, k] = np.diagonal(power, axis1=1, axis2=2)
    return out
