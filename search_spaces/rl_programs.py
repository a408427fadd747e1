"""RL loss programs: the known losses written in the rl_ops vocabulary, and the original search's
random programs and mutation (brain_autorl `program.py`, `evolution_v2.GraphMutator`).

Known losses (reference: shared/reference/rl-losses-and-nas-cells.md A.4). Notation: Y = r + γ·max
Q_targ(s',·), δ = Q(s,a) - Y.

    dqn          0.5·δ²                                   (graph_configs.normal_dqn_config)
    double_dqn   0.5·(Q(s,a) - (r + γ·Q_targ(s', argmax Q(s',·))))²       (ddqn_config)
    dqn_reg      0.5·δ² + 0.1·Q(s,a)   the code's DQNReg (dqn_reg_config); the paper writes δ² + 0.1·Q(s,a)
    dqn_clipped  max(Q(s,a), δ² + Y) + max(Q(s,a) - Y, γ·(max Q_targ(s',·))²)   the paper's formula

A program of the search has the original's length: the inputs, then DQN_OPS + EXTRA_OPS op nodes,
and its output is its last node. Nodes no output reads are kept (the original keeps them too): a
mutation can make them live again. So:

* a random program is the original's bootstrapped one: the 7 ops of DQN, then 14 random ops, the
  last being the output; whole programs are drawn again until the output is a float the online
  network reaches (the space's rule);
* a seed (DQN, Double DQN) is 14 (13) random ops that nothing reads, then the loss's own ops, so
  the loss is the output and its nodes may be rewired to the random ones;
* each random op is drawn uniformly among all (op, arguments) pairs that type-check on earlier
  nodes, as `get_possible_ops_and_inputs` does (ordered ops: pairs of distinct nodes; unordered
  ops: sets of two distinct nodes, listed in index order). The original's quirk of never reading
  the node just before is not copied.

Mutation, with probability `fresh_probability` (the original's 1 - 0.95) a new random program;
otherwise one op node, chosen uniformly, gets a new op and new arguments drawn as above; a node
something reads (or the output) keeps its type, a node nothing reads may change it. The result must
obey the space's rule. A change to a node nothing reads does not change what the program computes;
the original records such a child as a duplicate, evolve asks a mutation for a different program,
so the neutral change is kept and another mutation applied on top, until the computation changes.
"""

from __future__ import annotations

import bisect
from typing import Sequence

import numpy as np

from evolve.errors import MutationError
from evolve.ops import INPUT, Op, Vocabulary
from evolve.program import Node, Program

from evolve.search_spaces.rl_ops import (
    ACTION_IN, DISCOUNT, INPUT_NAMES, Q_PARAM, Q_TARG_PARAM, REWARD, S_T, S_TM1,
)

SPACE = "rl-losses"
MAX_TRIES = 1000
#: the original's mutation_probability is 0.95: the rest of the children are fresh programs
FRESH_PROBABILITY = 0.05
#: seed programs fill their unread random ops from this fixed seed, so they are the same everywhere
SEED_FILLER_SEED = 0


class _Builder:
    """Writes a loss as calls: `b.op("select", q, b.action)` returns the new node's index."""

    def __init__(self, filler: Sequence[Node] = ()):
        self.nodes = [Node(INPUT) for _ in INPUT_NAMES] + list(filler)
        self.q_param, self.action, self.s_tm1, self.q_targ_param, self.s_t, self.reward, self.discount = (
            Q_PARAM, ACTION_IN, S_TM1, Q_TARG_PARAM, S_T, REWARD, DISCOUNT
        )

    def op(self, name: str, *args: int, unordered_pair: bool = False) -> int:
        self.nodes.append(Node(name, tuple(sorted(args)) if unordered_pair else tuple(args)))
        return len(self.nodes) - 1

    def dqn_target(self) -> tuple[int, int, int]:
        """(Q(s,a), Y, max Q_targ(s',·)), the first six ops of DQN."""
        q = self.op("q_values", self.q_param, self.s_tm1)
        q_sa = self.op("select", q, self.action)
        q_next = self.op("q_values", self.q_targ_param, self.s_t)
        max_next = self.op("max_list", q_next)
        y = self.op("add", self.reward, self.op("dot", self.discount, max_next))
        return q_sa, y, max_next

    def program(self, output: int) -> Program:
        return Program(tuple(self.nodes), (output,), SPACE)


def dqn(filler: Sequence[Node] = ()) -> Program:
    b = _Builder(filler)
    q_sa, y, _ = b.dqn_target()
    return b.program(b.op("l2_distance", q_sa, y))


def double_dqn(filler: Sequence[Node] = ()) -> Program:
    b = _Builder(filler)
    q_sa = b.op("select", b.op("q_values", b.q_param, b.s_tm1), b.action)
    best = b.op("argmax", b.op("q_values", b.q_param, b.s_t))
    value = b.op("select", b.op("q_values", b.q_targ_param, b.s_t), best)
    y = b.op("add", b.reward, b.op("dot", b.discount, value))
    return b.program(b.op("l2_distance", q_sa, y))


def dqn_reg(filler: Sequence[Node] = ()) -> Program:
    b = _Builder(filler)
    q_sa, y, _ = b.dqn_target()
    return b.program(b.op("add", b.op("l2_distance", q_sa, y), b.op("mul_tenth", q_sa)))


def dqn_clipped(filler: Sequence[Node] = ()) -> Program:
    b = _Builder(filler)
    q_sa, y, max_next = b.dqn_target()
    delta_sq = b.op("l2_norm", b.op("sub", q_sa, y))
    first = b.op("max", q_sa, b.op("add", delta_sq, y, unordered_pair=True))
    second = b.op("max", b.op("sub", q_sa, y), b.op("dot", b.discount, b.op("l2_norm", max_next)), unordered_pair=True)
    return b.program(b.op("add", first, second))


KNOWN = {"dqn": dqn, "double_dqn": double_dqn, "dqn_reg": dqn_reg, "dqn_clipped": dqn_clipped}
SEEDS = ("dqn", "double_dqn")


# ---------------------------------------------------------------------------- drawing ops
class OpSampler:
    """Draws a node uniformly among the (op, arguments) pairs that type-check on earlier nodes."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        self.input_types = [inp.type.name for inp in vocab.inputs]
        self._ops = [(op, tuple(t.name for t in op.input_types)) for op in vocab.ops]

    def node(self, types: Sequence[str], rng: np.random.Generator, output_type: str | None = None) -> tuple[Node, str] | None:
        """A random node reading nodes 0..len(types)-1 (of these types) and its type; only ops giving
        `output_type` when one is named; None when none can be built."""
        where: dict[str, list[int]] = {}
        for i, t in enumerate(types):
            where.setdefault(t, []).append(i)
        choices, counts = [], []
        for op, in_types in self._ops:
            if output_type is not None and op.output_type.name != output_type:
                continue
            count = _count(op, in_types, where)
            if count:
                choices.append((op, in_types))
                counts.append(count)
        if not choices:
            return None
        total = sum(counts)
        k = int(np.searchsorted(np.cumsum(counts), rng.integers(total), side="right"))
        op, in_types = choices[k]
        return Node(op.name, _draw_arguments(op, in_types, where, rng)), op.output_type.name


def _count(op: Op, in_types: tuple[str, ...], where: dict[str, list[int]]) -> int:
    """How many argument tuples of earlier nodes this op accepts (tuples of distinct nodes)."""
    if len(in_types) == 1:
        return len(where.get(in_types[0], ()))
    a, b = (where.get(t, []) for t in in_types)
    if not op.is_commutative:
        return len(a) * len(b) - (len(a) if in_types[0] == in_types[1] else 0)
    if in_types[0] == in_types[1]:
        return len(a) * (len(a) - 1) // 2
    return sum(bisect.bisect_left(a, j) for j in b)  # pairs i < j with i of the first type


def _draw_arguments(op: Op, in_types: tuple[str, ...], where: dict[str, list[int]], rng: np.random.Generator) -> tuple[int, ...]:
    """Uniform among the tuples `_count` counts (rejection sampling: every draw has a fair chance)."""
    if len(in_types) == 1:
        pool = where[in_types[0]]
        return (pool[int(rng.integers(len(pool)))],)
    a, b = where[in_types[0]], where[in_types[1]]
    while True:
        i, j = a[int(rng.integers(len(a)))], b[int(rng.integers(len(b)))]
        if i == j:
            continue
        if not op.is_commutative:
            return (i, j)
        if in_types[0] == in_types[1]:
            return (min(i, j), max(i, j))
        if i < j:
            return (i, j)


# ---------------------------------------------------------------------------- programs
def random_ops(sampler: OpSampler, types: list[str], count: int, rng: np.random.Generator) -> list[Node]:
    """`count` random nodes after nodes of these `types` (extended in place)."""
    nodes = []
    for _ in range(count):
        node, type_ = sampler.node(types, rng)
        nodes.append(node)
        types.append(type_)
    return nodes


def random_program(vocab: Vocabulary, rng: np.random.Generator, sampler: OpSampler | None = None) -> Program:
    """The original's bootstrapped random program: DQN's ops, then random ops up to the length."""
    sampler = sampler or OpSampler(vocab)
    prefix = dqn()
    prefix_types = prefix.node_types(vocab)
    extra = vocab.max_nodes - len(prefix.nodes)
    for _ in range(MAX_TRIES):
        types = list(prefix_types)
        nodes = list(prefix.nodes) + random_ops(sampler, types, extra, rng)
        if types[-1] != "float":
            continue
        program = Program(tuple(nodes), (len(nodes) - 1,), SPACE)
        if vocab.broken_rule(program) is None:
            return program
    raise MutationError(f"could not draw a valid random {SPACE} program in {MAX_TRIES} tries")


def seed_program(name: str, vocab: Vocabulary) -> Program:
    """A known loss at the search's length: random ops nothing reads, then the loss's own ops."""
    bare = KNOWN[name]()
    room = vocab.max_nodes - len(bare.nodes)
    if room <= 0:
        return bare
    rng = np.random.default_rng([SEED_FILLER_SEED, *name.encode()])
    types = [inp.type.name for inp in vocab.inputs]
    return KNOWN[name](random_ops(OpSampler(vocab), types, room, rng))


def mutate(
    program: Program,
    vocab: Vocabulary,
    rng: np.random.Generator,
    fresh_probability: float = FRESH_PROBABILITY,
    sampler: OpSampler | None = None,
) -> Program:
    """The original's mutation (module docstring): a child computing something else than `program`."""
    sampler = sampler or OpSampler(vocab)
    if rng.random() < fresh_probability:
        for _ in range(MAX_TRIES):
            child = random_program(vocab, rng, sampler)
            if child.digest != program.digest:
                return child
    base = program
    for _ in range(MAX_TRIES):
        child = replace_node(base, vocab, rng, sampler)
        if child is None or vocab.broken_rule(child) is not None:
            continue
        if child.digest != program.digest:
            return child.validate(vocab)
        base = child  # neutral: a node nothing reads changed; keep it and mutate again
    raise MutationError(f"no mutation of {program!r} changed what it computes in {MAX_TRIES} tries")


def replace_node(program: Program, vocab: Vocabulary, rng: np.random.Generator, sampler: OpSampler) -> Program | None:
    """One op node, drawn uniformly, with a new op and arguments (its type kept if anything reads it)."""
    n_in = len(vocab.inputs)
    if len(program.nodes) <= n_in:
        return None
    i = int(rng.integers(n_in, len(program.nodes)))
    types = program.node_types(vocab)
    read = i in program.outputs or any(i in node.inputs for node in program.nodes[i + 1:])
    drawn = sampler.node(types[:i], rng, output_type=types[i] if read else None)
    if drawn is None:
        return None
    nodes = list(program.nodes)
    nodes[i] = drawn[0]
    return Program(tuple(nodes), program.outputs, program.space)
