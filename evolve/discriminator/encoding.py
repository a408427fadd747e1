"""Programs as graphs: any Program of any space becomes graphs packed in a fixed-shape GraphBatch.

Node features: a one-hot of the node's op over the space's vocabulary (inputs get one slot each, so
`x1` and `x2` differ), its kind (input / const / op), whether it is an output, a squashed constant
value, and random-walk structural encodings (diag of the k-step random-walk matrix, k = 1..K).
Edges run from argument to consumer and back; edge features are one-hot (argument position,
direction), so `a - b` and `b - a` are different graphs.

Programs are small (on Nguyen problems about 3 live nodes, rarely more than 8), and what a batch
costs to embed is its node slots. So graphs are packed, several to a bin, into bins of `size` node
slots (16, or the power of two that fits the largest graph), first fit by decreasing size; each
node slot records which graph it holds, and attention stays within a graph. Shapes are bounded so
the model compiles a bounded number of times: the numbers of graph slots and of bins are powers of
two, with at least one bin per 4 graph slots (so the bins mostly follow the graph slots), and edge
slots are `2 * max_arity` per node slot. The model reads all of it from the array shapes. (Sizes
on a finer ladder, 8, 12, 16, 24..., padded less but made a PAM-RT run on Nguyen-4 compile 31 shapes
where it compiles about a dozen now, and compiling one costs as much as hundreds of calls.)

Encoding is numpy throughout: the programs encoded together are one pass over their nodes, their
random walks one stack of matrix products, and a batch is a few concatenations and scatters.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import NamedTuple, Sequence

import numpy as np

from evolve.ops import CONST, INPUT, Vocabulary
from evolve.program import Program, Spelling

SMALLEST_BIN = 16
SMALLEST_BATCH = 8
#: (graph slots, bins) of the shapes inference runs in: a batch takes the smallest that holds it, or
#: is split in chunks of the largest (`inference_chunks`), so a run compiles these few shapes per bin
#: size (on Nguyen-4 at 1,500 evaluations: 4 where batches in shapes of their own compiled 15). A
#: call costs about its bins (on this machine 0.6 ms for 4, 1.4 for 16, 2.5 for 32, 9.5 for 128;
#: graph slots cost little); one PAM-RT proposal is 32 pairs (up to 64 programs), and with many
#: evaluations in flight most calls are batches of 100 to 400 programs
INFERENCE_SHAPES = ((32, 8), (64, 16), (128, 32), (512, 128))
#: a batch has at least one bin per this many graph slots (on Nguyen problems 4 to 5 graphs fill a
#: bin), so its bin count mostly follows its graph slots: fewer shapes, fewer compilations
BINS_PER_GRAPH_SLOTS = 4
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


class GraphBatch(NamedTuple):
    """Graphs packed in bins (see the module docstring). Node slots: features [bins, size, F] and the
    graph each holds [bins, size] (n_graphs: padding). Edges, as flat node-slot indices: senders and
    receivers [E], features [E, Fe], mask [E] (0: padding). Nodes per graph [n_graphs] (0: padding).
    With a leading axis of steps, a stack of batches of one shape (what a training call scans)."""

    nodes: np.ndarray
    node_graph: np.ndarray
    senders: np.ndarray
    receivers: np.ndarray
    edges: np.ndarray
    edge_mask: np.ndarray
    n_node: np.ndarray


def pad_count(n: int, smallest: int) -> int:
    """The next power of two that is at least n and at least `smallest`."""
    size = smallest
    while size < n:
        size *= 2
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
        self._cache: collections.OrderedDict[Spelling, EncodedProgram] = collections.OrderedDict()
        self._cache_size = cache_size

    # ------------------------------------------------------------------ programs
    def encode(self, program: Program) -> EncodedProgram:
        return self.encode_many([program])[0]

    def encode_many(self, programs: Sequence[Program]) -> list[EncodedProgram]:
        """Encodings of the programs, from the cache where it has them; the rest encoded together."""
        keys = [p.spelling for p in programs]
        found = [self._cache.get(key) for key in keys]
        for key, hit in zip(keys, found):
            if hit is not None:
                self._cache.move_to_end(key)  # least recently used leaves first
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
        # columns (graph, argument node, reading node, position), in node order, then argument order
        arity = np.array([len(node.inputs) for node in nodes], np.int64)
        first_arg = np.cumsum(arity) - arity
        args = np.stack([np.repeat(np.repeat(np.arange(len(pruned)), counts), arity),
                         np.array([j for node in nodes for j in node.inputs], np.int64),
                         np.repeat(local, arity),
                         np.arange(int(arity.sum())) - np.repeat(first_arg, arity)], 1)
        graph_of_edge = np.repeat(args[:, 0], 2)
        senders = np.stack([args[:, 1], args[:, 2]], 1).reshape(-1).astype(np.int32)
        receivers = np.stack([args[:, 2], args[:, 1]], 1).reshape(-1).astype(np.int32)
        types = np.stack([args[:, 3], args[:, 3] + self.max_arity], 1).reshape(-1).astype(np.int8)
        if self.rw_steps and len(pruned):
            walks = random_walk_encodings(counts, graph_of_edge, senders, receivers, self.rw_steps)
            x[:, -self.rw_steps :] = walks[np.repeat(np.arange(len(pruned)), counts), local]
        edge_counts = np.bincount(args[:, 0], minlength=len(pruned)) * 2
        edge_starts = np.cumsum(edge_counts) - edge_counts
        # copies, not views: a program kept (in a cache) must not keep the whole batch's arrays alive
        return [
            EncodedProgram(x[s : s + n].copy(), senders[es : es + m].copy(), receivers[es : es + m].copy(),
                           types[es : es + m].copy())
            for s, n, es, m in zip(starts.tolist(), counts.tolist(), edge_starts.tolist(), edge_counts.tolist())
        ]

    # ------------------------------------------------------------------ batches
    def batch(self, programs: Sequence[Program], min_graphs: int = SMALLEST_BATCH, min_bins: int = 0) -> GraphBatch:
        """The programs as one GraphBatch (layout in the module docstring)."""
        encoded = self.encode_many(programs)
        return GraphBatch(*(a[0] for a in self.pack([encoded], pad_count(len(encoded), min_graphs), min_bins)))

    def pack(self, groups: Sequence[Sequence[EncodedProgram | None]], n_graphs: int, min_bins: int = 0,
             min_size: int = 0, placed: Sequence[tuple[list[int], list[int]]] | None = None) -> GraphBatch:
        """Each group (a list of encodings; None is an empty graph slot) as a batch of `n_graphs`
        graph slots, at least `min_bins` bins of at least `min_size` node slots, all of one shape,
        stacked on a leading axis. The
        shape depends on the arguments alone (never on earlier calls), so a resumed run computes
        exactly what the first did."""
        present = [e.n_node for group in groups for e in group if e is not None]
        if max((len(group) for group in groups), default=0) > n_graphs:
            raise ValueError(f"a group of more than {n_graphs} graphs")
        size = pad_count(max(present + [1, min_size]), SMALLEST_BIN)
        if placed is None:  # or given: what first_fit gave for each group (with bins of this size)
            placed = [first_fit([0 if e is None else e.n_node for e in group], size) for group in groups]
        needed = max([max(bins, default=-1) + 1 for bins, _ in placed] + [1])
        n_bins = pad_count(max(needed, n_graphs // BINS_PER_GRAPH_SLOTS, min_bins), 4)
        edge_slots = n_bins * size * 2 * self.max_arity
        steps, slots = len(groups), n_bins * size
        nodes = np.zeros((steps * slots, self.node_dim), np.float32)
        node_graph = np.full(steps * slots, n_graphs, np.int32)
        senders = np.zeros(steps * edge_slots, np.int32)
        receivers = np.zeros(steps * edge_slots, np.int32)
        edges = np.zeros((steps * edge_slots, self.edge_dim), np.float32)
        edge_mask = np.zeros(steps * edge_slots, np.float32)
        n_node = np.zeros((steps, n_graphs), np.int32)
        real = [(s, g, e, bins[g], offsets[g]) for s, (group, (bins, offsets)) in enumerate(zip(groups, placed))
                for g, e in enumerate(group) if e is not None]
        if real:
            step, graph, encoded, bin_, offset = zip(*real)
            step, graph = np.array(step), np.array(graph)
            counts = np.array([e.n_node for e in encoded])
            row_in_step = np.array(bin_) * size + np.array(offset)  # each graph's first node slot
            first_row = step * slots + row_in_step
            rows = np.repeat(first_row - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
            nodes[rows] = np.concatenate([e.nodes for e in encoded])
            node_graph[rows] = np.repeat(graph, counts)
            n_node[step, graph] = counts
            edge_counts = np.array([len(e.senders) for e in encoded])
            edge_step = np.repeat(step, edge_counts)
            before_step = np.cumsum(np.bincount(edge_step, minlength=steps)) - np.bincount(edge_step, minlength=steps)
            at = edge_step * edge_slots + np.arange(edge_counts.sum()) - before_step[edge_step]
            shift = np.repeat(row_in_step, edge_counts)  # node slots are numbered within a step
            senders[at] = np.concatenate([e.senders for e in encoded]) + shift
            receivers[at] = np.concatenate([e.receivers for e in encoded]) + shift
            edges[at, np.concatenate([e.edge_types for e in encoded])] = 1.0
            edge_mask[at] = 1.0
        return GraphBatch(nodes.reshape(steps, n_bins, size, -1), node_graph.reshape(steps, n_bins, size),
                          senders.reshape(steps, -1), receivers.reshape(steps, -1),
                          edges.reshape(steps, edge_slots, -1), edge_mask.reshape(steps, -1), n_node)


class Chunk(NamedTuple):
    """Pairs [start, stop) of a batch; the distinct programs they read (positions in the batch's list
    of distinct programs) and the bin and offset of each, packed by first fit; the shape they are
    scored in."""

    start: int
    stop: int
    members: list[int]
    placed: tuple[list[int], list[int]]
    slots: int
    bins: int


def inference_chunks(ia: Sequence[int], ib: Sequence[int], node_counts: Sequence[int], size: int) -> list[Chunk]:
    """The pairs (ia[k], ib[k]: positions in a list of distinct programs of `node_counts` nodes,
    none above `size`) in consecutive chunks, each scored in one shape of `INFERENCE_SHAPES`: the
    smallest that holds the whole batch (its pairs and programs in the graph slots, the programs
    packed by first fit in the bins), else chunks of the largest, each filled pair by pair while its
    programs still fit. A function of its arguments alone: a resumed run scores in the shapes the
    first did."""
    n, programs = len(ia), len(node_counts)
    slots, bins = INFERENCE_SHAPES[-1]
    if max(n, programs) <= slots and sum(node_counts) <= bins * size:
        placed = first_fit(node_counts, size)
        needed = max(placed[0], default=0) + 1
        for slots, bins in INFERENCE_SHAPES:
            if max(n, programs) <= slots and needed <= bins:
                return [Chunk(0, n, list(range(programs)), placed, slots, bins)]
    chunks: list[Chunk] = []
    start, members, fill = 0, {}, []
    for k, pair in enumerate(zip(ia, ib)):
        new = [g for g in dict.fromkeys(pair) if g not in members]
        trial = _placed_online(fill, [node_counts[g] for g in new], size, bins)
        if k - start == slots or len(members) + len(new) > slots or trial is None:
            chunks += _fitted(start, k, list(members), node_counts, size, ia, ib)
            start, members, new = k, {}, list(dict.fromkeys(pair))
            trial = _placed_online([], [node_counts[g] for g in new], size, bins)
        members.update(dict.fromkeys(new))
        fill = trial
    return chunks + _fitted(start, n, list(members), node_counts, size, ia, ib)


def _placed_online(fill: list[int], counts: Sequence[int], size: int, bins: int) -> list[int] | None:
    """The bins' fill after adding graphs of `counts` nodes, each to the first bin with room; None
    if that takes more than `bins` bins."""
    fill = list(fill)
    for n in counts:
        b = next((b for b, used in enumerate(fill) if used + n <= size), len(fill))
        if b == len(fill):
            if b == bins:
                return None
            fill.append(0)
        fill[b] += n
    return fill


def _fitted(start: int, stop: int, members: list[int], node_counts: Sequence[int], size: int, ia, ib) -> list[Chunk]:
    """Pairs [start, stop) as a chunk of the largest shape, packed by first fit largest first (what
    `pack` lays out), or as two halves where that packing needs more bins (rare: filled online,
    smallest first can pack tighter)."""
    slots, bins = INFERENCE_SHAPES[-1]
    placed = first_fit([node_counts[g] for g in members], size)
    if max(placed[0], default=0) < bins or stop - start == 1:
        return [Chunk(start, stop, members, placed, slots, bins)]
    mid = (start + stop) // 2
    halves = [list(dict.fromkeys(g for pair in zip(ia[a:b], ib[a:b]) for g in pair)) for a, b in ((start, mid), (mid, stop))]
    return (_fitted(start, mid, halves[0], node_counts, size, ia, ib)
            + _fitted(mid, stop, halves[1], node_counts, size, ia, ib))


def first_fit(counts: Sequence[int], size: int) -> tuple[list[int], list[int]]:
    """(bin, offset) of each graph of `counts` nodes packed into bins of `size` slots: largest first,
    each into the first bin with room (0-node graphs take no room)."""
    bins, offsets, fill = [0] * len(counts), [0] * len(counts), []
    for g in sorted(range(len(counts)), key=lambda g: -counts[g]):
        n = counts[g]
        if not n:
            continue
        b = next((b for b, used in enumerate(fill) if used + n <= size), len(fill))
        if b == len(fill):
            fill.append(0)
        bins[g], offsets[g] = b, fill[b]
        fill[b] += n
    return bins, offsets


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
