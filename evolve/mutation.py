"""Generic typed mutations and random programs, usable by any search space.

Every mutation keeps the program well typed and in SSA order. `mutate` retries until the child
computes something different from its parent (by canonical hash) and raises MutationError after a
bounded number of tries, so a search can never silently stall on a program it cannot change.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from evolve.errors import MutationError
from evolve.ops import CONST, INPUT, Op, Vocabulary
from evolve.program import Node, Program

MAX_TRIES = 100


def random_program(vocab: Vocabulary, space: str, rng: np.random.Generator, max_ops: int = 8) -> Program:
    """A random valid program with 1..max_ops nodes after the inputs (pruned)."""
    budget = min(max_ops, vocab.max_nodes - len(vocab.inputs))
    for _ in range(MAX_TRIES):
        nodes = [Node(INPUT) for _ in vocab.inputs]
        types = [inp.type for inp in vocab.inputs]
        for _ in range(int(rng.integers(1, budget + 1))):
            node, type_ = _random_node(vocab, types, len(nodes), rng)
            nodes.append(node)
            types.append(type_)
        outputs: list[int] = []
        for t in vocab.output_types:
            candidates = [i for i, ty in enumerate(types) if ty == t and nodes[i].op != INPUT]
            if not candidates:
                break
            # the latest node not already an output: a multi-output space (update, new state...) should
            # not start with every output reading the same node
            unused = [i for i in candidates if i not in outputs] or candidates
            outputs.append(unused[-1])
        else:
            return Program(tuple(nodes), tuple(outputs), space).pruned()
    raise MutationError(f"could not build a random program of space {space!r} in {MAX_TRIES} tries")


def mutate(program: Program, vocab: Vocabulary, rng: np.random.Generator, max_tries: int = MAX_TRIES) -> Program:
    """One random typed mutation that changes what the program computes."""
    for _ in range(max_tries):
        kind = MUTATIONS[int(rng.integers(len(MUTATIONS)))]
        child = kind(program, vocab, rng)
        if child is None:
            continue
        child = child.pruned()
        if len(child.nodes) <= vocab.max_nodes and child.digest != program.digest:
            return child.validate(vocab)
    raise MutationError(f"no mutation changed {program!r} in {max_tries} tries")


# ---------------------------------------------------------------------------- the mutations
# Each returns a new valid program, or None when it does not apply to this program.


def change_op(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Replace a node's op by another with the same signature (e.g. sin -> cos, add -> mul)."""
    ops = vocab.op_by_name
    choices = []
    for i, node in enumerate(program.nodes):
        if node.op in (INPUT, CONST):
            continue
        op = ops[node.op]
        alternatives = [o for o in vocab.ops if o.name != op.name and o.input_types == op.input_types and o.output_type == op.output_type]
        if alternatives:
            choices.append((i, alternatives))
    if not choices:
        return None
    i, alternatives = choices[int(rng.integers(len(choices)))]
    new_op = alternatives[int(rng.integers(len(alternatives)))]
    return _replace_node(program, i, dataclasses.replace(program.nodes[i], op=new_op.name))


def rewire_input(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Point one argument of a node (or one program output) at another node of the right type."""
    types = program.node_types(vocab)
    slots = _argument_slots(program, vocab)
    rng.shuffle(slots)
    for consumer, pos, type_, limit in slots:
        current = program.nodes[consumer].inputs[pos] if consumer is not None else program.outputs[pos]
        candidates = [j for j in range(limit) if types[j] == type_ and j != current]
        if candidates:
            return _set_argument(program, consumer, pos, candidates[int(rng.integers(len(candidates)))])
    return None


def insert_node(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Insert a new random node and make one argument (or output) read it."""
    if len(program.nodes) >= vocab.max_nodes:
        return None
    types = program.node_types(vocab)
    slots = _argument_slots(program, vocab)
    consumer, pos, type_, limit = slots[int(rng.integers(len(slots)))]
    at = int(rng.integers(len(vocab.inputs), limit + 1))  # new node's index, before its consumer
    for _ in range(10):
        node, node_type = _random_node(vocab, types[:at], at, rng)
        if node_type == type_:
            break
    else:
        return None
    shift = lambda j: j + 1 if j >= at else j  # noqa: E731
    nodes = [dataclasses.replace(n, inputs=tuple(map(shift, n.inputs))) for n in program.nodes]
    nodes.insert(at, node)
    shifted = Program(tuple(nodes), tuple(map(shift, program.outputs)), program.space)
    return _set_argument(shifted, None if consumer is None else shift(consumer), pos, at)


def delete_node(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Remove a node; whatever read it reads one of its same-typed arguments instead (a bypass), or
    another earlier node of its type."""
    types = program.node_types(vocab)
    deletable = [i for i, n in enumerate(program.nodes) if n.op != INPUT]
    if not deletable:
        return None
    d = deletable[int(rng.integers(len(deletable)))]
    bypass = [j for j in program.nodes[d].inputs if types[j] == types[d]]
    others = [j for j in range(d) if types[j] == types[d]]
    replacements = bypass or others
    if not replacements:
        return None
    r = replacements[int(rng.integers(len(replacements)))]
    renumber = lambda j: r if j == d else (j - 1 if j > d else j)  # noqa: E731
    nodes = [dataclasses.replace(n, inputs=tuple(map(renumber, n.inputs))) for i, n in enumerate(program.nodes) if i != d]
    return Program(tuple(nodes), tuple(map(renumber, program.outputs)), program.space)


def perturb_constant(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Multiply one constant by 2**N(0, 1)."""
    consts = [i for i, n in enumerate(program.nodes) if n.op == CONST]
    if not consts:
        return None
    i = consts[int(rng.integers(len(consts)))]
    value = program.nodes[i].value * 2.0 ** rng.normal()
    return _replace_node(program, i, dataclasses.replace(program.nodes[i], value=float(value)))


MUTATIONS: tuple[Callable[[Program, Vocabulary, np.random.Generator], Program | None], ...] = (
    change_op,
    rewire_input,
    insert_node,
    delete_node,
    perturb_constant,
)


# ---------------------------------------------------------------------------- helpers


def _random_node(vocab: Vocabulary, types: list[str], index: int, rng: np.random.Generator) -> tuple[Node, str]:
    """A random node at `index` whose arguments are drawn from earlier nodes (whose `types` are given)."""
    present = set(types)
    ops: list[Op | None] = [op for op in vocab.ops if set(op.input_types) <= present]
    if vocab.const_type is not None:
        ops.append(None)  # a constant
    choice = ops[int(rng.integers(len(ops)))]
    if choice is None:
        return Node(CONST, (), float(rng.normal())), vocab.const_type
    args = []
    for t in choice.input_types:
        candidates = [j for j in range(index) if types[j] == t]
        args.append(candidates[int(rng.integers(len(candidates)))])
    return Node(choice.name, tuple(args)), choice.output_type


def _argument_slots(program: Program, vocab: Vocabulary) -> list[tuple[int | None, int, str, int]]:
    """Every place a value is read: (consumer node or None for an output, position, type, how many
    nodes before it may be read)."""
    ops = vocab.op_by_name
    slots = []
    for i, node in enumerate(program.nodes):
        if node.op not in (INPUT, CONST):
            for pos, t in enumerate(ops[node.op].input_types):
                slots.append((i, pos, t, i))
    for k, t in enumerate(vocab.output_types):
        slots.append((None, k, t, len(program.nodes)))
    return slots


def _set_argument(program: Program, consumer: int | None, pos: int, source: int) -> Program:
    if consumer is None:
        outputs = list(program.outputs)
        outputs[pos] = source
        return Program(program.nodes, tuple(outputs), program.space)
    node = program.nodes[consumer]
    inputs = list(node.inputs)
    inputs[pos] = source
    return _replace_node(program, consumer, dataclasses.replace(node, inputs=tuple(inputs)))


def _replace_node(program: Program, i: int, node: Node) -> Program:
    nodes = list(program.nodes)
    nodes[i] = node
    return Program(tuple(nodes), program.outputs, program.space)
