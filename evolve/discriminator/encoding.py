"""Programs as graphs: any Program of any space becomes a padded jraph GraphsTuple.

Node features: a one-hot of the node's op over the space's vocabulary (inputs get one slot each, so
`x1` and `x2` differ), its kind (input / const / op), whether it is an output, a squashed constant
value, and random-walk structural encodings (diag of the k-step random-walk matrix, k = 1..K).
Edges run from argument to consumer and back; edge features are one-hot (argument position,
direction), so `a - b` and `b - a` are different graphs.

Batches use a fixed layout so the model compiles a bounded number of times: every graph occupies
`budget` node slots (the smallest of 16, 32, 64... that fits the largest graph) and
`budget * 2 * max_arity` edge slots, and the number of graphs is padded to a power of two. The
model reads `budget` and the graph count from the array shapes.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Sequence

import jraph
import numpy as np

from evolve.ops import CONST, INPUT, Vocabulary
from evolve.program import Program

SMALLEST_BUDGET = 16
SMALLEST_BATCH = 8
KINDS = (INPUT, CONST, "op")


@dataclasses.dataclass(frozen=True)
class EncodedProgram:
    """One program as arrays: node features [n, F], edges as (sender, receiver) with features [m, Fe]."""

    nodes: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    edges: np.ndarray

    @property
    def n_node(self) -> int:
        return self.nodes.shape[0]


def pad_count(n: int, smallest: int) -> int:
    """The next power of two that is at least n and at least `smallest`."""
    size = smallest
    while size < n:
        size *= 2
    return size


class GraphEncoder:
    """Encodes the programs of one vocabulary; remembers recent encodings."""

    def __init__(self, vocab: Vocabulary, rw_steps: int = 8, cache_size: int = 20_000):
        self.vocab = vocab
        self.rw_steps = rw_steps
        self.max_arity = max([op.arity for op in vocab.ops] + [1])
        self._slot = {name: len(vocab.inputs) + k for k, name in enumerate(vocab.op_names)}
        self._n_op_slots = len(vocab.inputs) + len(vocab.op_names)
        self.node_dim = self._n_op_slots + len(KINDS) + 2 + rw_steps
        self.edge_dim = 2 * self.max_arity
        self.max_budget = pad_count(vocab.max_nodes, SMALLEST_BUDGET)
        self._cache: collections.OrderedDict[tuple, EncodedProgram] = collections.OrderedDict()
        self._cache_size = cache_size

    # ------------------------------------------------------------------ one program
    def encode(self, program: Program) -> EncodedProgram:
        # Keyed by spelling, not digest: a+b and b+a share a digest but not an encoding.
        key = (program.nodes, program.outputs)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        encoded = self._encode(program.pruned())
        self._cache[key] = encoded
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return encoded

    def _encode(self, program: Program) -> EncodedProgram:
        n = len(program.nodes)
        x = np.zeros((n, self.node_dim), np.float32)
        outputs = set(program.outputs)
        senders, receivers, edges = [], [], []
        for i, node in enumerate(program.nodes):
            if node.op == INPUT:
                x[i, i] = 1.0
                x[i, self._n_op_slots + 0] = 1.0
            else:
                x[i, self._slot[node.op]] = 1.0
                x[i, self._n_op_slots + (1 if node.op == CONST else 2)] = 1.0
            x[i, self._n_op_slots + len(KINDS)] = float(i in outputs)
            if node.value is not None:
                x[i, self._n_op_slots + len(KINDS) + 1] = np.tanh(node.value)
            for pos, j in enumerate(node.inputs):
                senders += [j, i]
                receivers += [i, j]
                edges += [pos, self.max_arity + pos]  # forward, then backward, at this position
        if self.rw_steps:
            x[:, -self.rw_steps :] = random_walk_encoding(n, senders, receivers, self.rw_steps)
        e = np.zeros((len(edges), self.edge_dim), np.float32)
        e[np.arange(len(edges)), edges] = 1.0
        return EncodedProgram(x, np.asarray(senders, np.int32), np.asarray(receivers, np.int32), e)

    # ------------------------------------------------------------------ batches
    def batch(self, programs: Sequence[Program], min_graphs: int = SMALLEST_BATCH) -> jraph.GraphsTuple:
        """The programs as one padded GraphsTuple (layout in the module docstring)."""
        encoded = [self.encode(p) for p in programs]
        budget = pad_count(max([e.n_node for e in encoded] + [1]), SMALLEST_BUDGET)
        n_graphs = pad_count(len(encoded), min_graphs)
        edge_budget = budget * 2 * self.max_arity
        nodes = np.zeros((n_graphs, budget, self.node_dim), np.float32)
        edges = np.zeros((n_graphs, edge_budget, self.edge_dim), np.float32)
        senders = np.zeros((n_graphs, edge_budget), np.int32)
        receivers = np.zeros((n_graphs, edge_budget), np.int32)
        n_node = np.zeros(n_graphs, np.int32)
        n_edge = np.zeros(n_graphs, np.int32)
        for g, e in enumerate(encoded):
            m = len(e.senders)
            nodes[g, : e.n_node] = e.nodes
            edges[g, :m] = e.edges
            senders[g, :m] = e.senders
            receivers[g, :m] = e.receivers
            n_node[g], n_edge[g] = e.n_node, m
        offsets = (np.arange(n_graphs, dtype=np.int32) * budget)[:, None]
        return jraph.GraphsTuple(
            nodes=nodes.reshape(-1, self.node_dim),
            edges=edges.reshape(-1, self.edge_dim),
            senders=(senders + offsets).reshape(-1),
            receivers=(receivers + offsets).reshape(-1),
            n_node=n_node,
            n_edge=n_edge,
            globals=None,
        )


def random_walk_encoding(n: int, senders: Sequence[int], receivers: Sequence[int], steps: int) -> np.ndarray:
    """[n, steps]: the probability that a random walk on the undirected graph returns to its start
    node after k = 1..steps steps; it tells apart structures that one-hot features cannot."""
    adjacency = np.zeros((n, n), np.float64)
    adjacency[list(senders), list(receivers)] = 1.0
    degree = adjacency.sum(axis=1, keepdims=True)
    walk = np.divide(adjacency, degree, out=np.zeros_like(adjacency), where=degree > 0)
    out = np.zeros((n, steps), np.float32)
    power = np.eye(n)
    for k in range(steps):
        power = power @ walk
        out[:, k] = np.diag(power)
    return out
