"""Generic typed mutations and random programs, usable by any search space.

Every mutation keeps the program well typed and in SSA order. `mutate` retries until the child
computes something different from its parent (by canonical hash) and obeys the space's validity
rules, and raises MutationError after a bounded number of tries, so a search can never silently
stall on a program it cannot change.

For a vocabulary without variadic ops, overloads, several constant types or rules, the draws from
the numpy Generator are exactly those of the first version of this module (tests/golden replays
them): published searches stay reproducible.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from evolve.errors import MutationError
from evolve.ops import CONST, INPUT, Op, ValueType, Vocabulary
from evolve.program import Node, Program

MAX_TRIES = 100


def random_program(vocab: Vocabulary, space: str, rng: np.random.Generator, max_ops: int = 8) -> Program:
    """A random valid program with 1..max_ops nodes after the inputs (pruned) that obeys the rules."""
    budget = min(max_ops, vocab.max_nodes - len(vocab.inputs))
    broken = None
    for _ in range(MAX_TRIES):
        nodes = [Node(INPUT) for _ in vocab.inputs]
        types = [inp.type.name for inp in vocab.inputs]
        for _ in range(int(rng.integers(1, budget + 1))):
            drawn = _random_node(vocab, types, len(nodes), rng)
            if drawn is None:
                break
            nodes.append(drawn[0])
            types.append(drawn[1])
        outputs: list[int] = []
        for t in vocab.output_types:
            candidates = [i for i, ty in enumerate(types) if ty == t.name and nodes[i].op != INPUT]
            if not candidates:
                break
            # the latest node not already an output: a multi-output space (update, new state...) should
            # not start with every output reading the same node
            unused = [i for i in candidates if i not in outputs] or candidates
            outputs.append(unused[-1])
        else:
            program = Program(tuple(nodes), tuple(outputs), space).pruned()
            broken = vocab.broken_rule(program)
            if broken is None:
                return program
    reason = f": {broken}" if broken is not None else ""
    raise MutationError(f"could not build a random program of space {space!r} in {MAX_TRIES} tries{reason}")


def mutate(program: Program, vocab: Vocabulary, rng: np.random.Generator, max_tries: int = MAX_TRIES) -> Program:
    """One random typed mutation that changes what the program computes and obeys the space's rules."""
    kinds = mutations_for(vocab)
    broken = None
    for _ in range(max_tries):
        kind = kinds[int(rng.integers(len(kinds)))]
        child = kind(program, vocab, rng)
        if child is None:
            continue
        child = child.pruned()
        if len(child.nodes) <= vocab.max_nodes and child.digest != program.digest:
            broken = vocab.broken_rule(child)
            if broken is None:
                return child.validate(vocab)
    if broken is not None:
        raise MutationError(f"no mutation of {program!r} obeyed the space's rules in {max_tries} tries: {broken}")
    raise MutationError(f"no mutation changed {program!r} in {max_tries} tries")


# ---------------------------------------------------------------------------- the mutations
# Each returns a new valid program (the space's rules aside), or None when it does not apply.


def change_op(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Replace a node's op by another that reads the same arguments and gives the same type (e.g.
    sin -> cos, add -> mul)."""
    types, ops = program.node_types_and_ops(vocab)
    choices = []
    for i, (node, op) in enumerate(zip(program.nodes, ops)):
        if op is None:
            continue
        arg_types = tuple(types[j] for j in node.inputs)
        alternatives = [
            o for o in vocab.ops if o.name != op.name and o.output_type.name == op.output_type.name and o.accepts(arg_types)
        ]
        if alternatives:
            choices.append((i, alternatives))
    if not choices:
        return None
    i, alternatives = choices[int(rng.integers(len(choices)))]
    new_op = alternatives[int(rng.integers(len(alternatives)))]
    node = program.nodes[i]
    if new_op.variadic is None and node.unordered:
        node = dataclasses.replace(node, unordered=False)
    elif new_op.variadic is not None and not node.unordered:
        if len(set(node.inputs)) != len(node.inputs):
            return None  # a variadic op reads a set: x*x cannot become sum{x}
        node = dataclasses.replace(node, unordered=True)
    return _replace_node(program, i, dataclasses.replace(node, op=new_op.name))


def rewire_input(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Point one argument of a node (or one program output) at another node of the right type."""
    types, ops = program.node_types_and_ops(vocab)
    slots = _argument_slots(program, vocab, ops)
    rng.shuffle(slots)
    for consumer, pos, type_, limit in slots:
        if consumer is None:
            taken = {program.outputs[pos]}
        elif program.nodes[consumer].unordered:
            taken = set(program.nodes[consumer].inputs)  # a set stays a set
        else:
            taken = {program.nodes[consumer].inputs[pos]}
        candidates = [j for j in range(limit) if types[j] == type_ and j not in taken]
        if candidates:
            return _set_argument(program, consumer, pos, candidates[int(rng.integers(len(candidates)))])
    return None


def insert_node(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Insert a new random node and make one argument (or output) read it."""
    if len(program.nodes) >= vocab.max_nodes:
        return None
    types, ops = program.node_types_and_ops(vocab)
    slots = _argument_slots(program, vocab, ops)
    consumer, pos, type_, limit = slots[int(rng.integers(len(slots)))]
    at = int(rng.integers(len(vocab.inputs), limit + 1))  # new node's index, before its consumer
    for _ in range(10):
        drawn = _random_node(vocab, types[:at], at, rng)
        if drawn is not None and drawn[1] == type_:
            node = drawn[0]
            break
    else:
        return None
    shift = lambda j: j + 1 if j >= at else j  # noqa: E731
    nodes = [n.with_inputs(tuple(map(shift, n.inputs))) for n in program.nodes]
    nodes.insert(at, node)
    shifted = Program(tuple(nodes), tuple(map(shift, program.outputs)), program.space)
    return _set_argument(shifted, None if consumer is None else shift(consumer), pos, at)


def delete_node(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Remove a node; whatever read it reads one of its same-typed arguments instead (a bypass), or
    another earlier node of its type. A variadic node that already read the replacement reads it once."""
    types, ops = program.node_types_and_ops(vocab)
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
    nodes = []
    for i, n in enumerate(program.nodes):
        if i == d:
            continue
        inputs = tuple(map(renumber, n.inputs))
        if n.unordered:
            inputs = tuple(dict.fromkeys(inputs))
            if len(inputs) < ops[i].variadic[0]:
                return None
        nodes.append(n.with_inputs(inputs))
    return Program(tuple(nodes), tuple(map(renumber, program.outputs)), program.space)


def perturb_constant(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """Multiply one constant by 2**N(0, 1)."""
    consts = [i for i, n in enumerate(program.nodes) if n.op == CONST]
    if not consts:
        return None
    i = consts[int(rng.integers(len(consts)))]
    value = program.nodes[i].value * 2.0 ** rng.normal()
    return _replace_node(program, i, dataclasses.replace(program.nodes[i], value=float(value)))


def add_argument(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """A variadic node reads one more earlier node of its type (an edge is added)."""
    types, ops = program.node_types_and_ops(vocab)
    choices = []
    for i, (node, op) in enumerate(zip(program.nodes, ops)):
        if op is not None and op.variadic and len(node.inputs) < op.variadic[1]:
            candidates = [j for j in range(i) if types[j] == op.input_types[0].name and j not in node.inputs]
            if candidates:
                choices.append((i, candidates))
    if not choices:
        return None
    i, candidates = choices[int(rng.integers(len(choices)))]
    node = program.nodes[i]
    added = candidates[int(rng.integers(len(candidates)))]
    return _replace_node(program, i, node.with_inputs(tuple(sorted(node.inputs + (added,)))))


def remove_argument(program: Program, vocab: Vocabulary, rng: np.random.Generator) -> Program | None:
    """A variadic node stops reading one of its arguments (an edge is removed)."""
    _, ops = program.node_types_and_ops(vocab)
    choices = [
        i for i, (node, op) in enumerate(zip(program.nodes, ops)) if op is not None and op.variadic and len(node.inputs) > op.variadic[0]
    ]
    if not choices:
        return None
    i = choices[int(rng.integers(len(choices)))]
    node = program.nodes[i]
    k = int(rng.integers(len(node.inputs)))
    return _replace_node(program, i, node.with_inputs(node.inputs[:k] + node.inputs[k + 1 :]))


Mutation = Callable[[Program, Vocabulary, np.random.Generator], "Program | None"]

#: The mutations of every space (their order fixes how a random number picks one).
MUTATIONS: tuple[Mutation, ...] = (change_op, rewire_input, insert_node, delete_node, perturb_constant)
#: Added for a vocabulary with variadic ops only, so other spaces draw exactly as before.
VARIADIC_MUTATIONS: tuple[Mutation, ...] = (add_argument, remove_argument)


def mutations_for(vocab: Vocabulary) -> tuple[Mutation, ...]:
    """The mutations `mutate` chooses from for this vocabulary."""
    return MUTATIONS + VARIADIC_MUTATIONS if vocab.has_variadic else MUTATIONS


# ---------------------------------------------------------------------------- helpers


def _random_node(vocab: Vocabulary, types: list[str], index: int, rng: np.random.Generator) -> tuple[Node, str] | None:
    """A random node at `index` whose arguments are drawn from earlier nodes (whose `types` are
    given), and its type; None when no op can read those nodes and the space has no constants."""
    present = set(types)
    choices: list[Op | ValueType] = [op for op in vocab.ops if _can_read(op, types, present)]
    choices += vocab.const_types  # one choice per constant type (one: exactly as when there was one)
    if not choices:
        return None
    choice = choices[int(rng.integers(len(choices)))]
    if isinstance(choice, ValueType):
        type_name = None if choice == vocab.const_types[0] else choice.name
        return Node(CONST, (), float(rng.normal()), type_name), choice.name
    if choice.variadic:
        candidates = [j for j in range(index) if types[j] == choice.input_types[0].name]
        least, most = choice.variadic
        count = int(rng.integers(least, min(most, len(candidates)) + 1))
        args = sorted(int(j) for j in rng.choice(candidates, size=count, replace=False)) if count else []
        return Node(choice.name, tuple(args), unordered=True), choice.output_type.name
    args = []
    for t in choice.input_types:
        candidates = [j for j in range(index) if types[j] == t.name]
        args.append(candidates[int(rng.integers(len(candidates)))])
    return Node(choice.name, tuple(args)), choice.output_type.name


def _can_read(op: Op, types: list[str], present: set[str]) -> bool:
    """Whether a node of `op` can find its arguments among nodes of these types."""
    if op.variadic:
        return sum(1 for t in types if t == op.input_types[0].name) >= op.variadic[0]
    return all(t.name in present for t in op.input_types)


def _argument_slots(program: Program, vocab: Vocabulary, ops: list[Op | None]) -> list[tuple[int | None, int, str, int]]:
    """Every place a value is read: (consumer node or None for an output, position, type, how many
    nodes before it may be read). `ops`: the op of each node (from `node_types_and_ops`)."""
    slots = []
    for i, (node, op) in enumerate(zip(program.nodes, ops)):
        if op is not None:
            for pos in range(len(node.inputs)):
                slots.append((i, pos, op.input_types[0 if op.variadic else pos].name, i))
    for k, t in enumerate(vocab.output_types):
        slots.append((None, k, t.name, len(program.nodes)))
    return slots


def _set_argument(program: Program, consumer: int | None, pos: int, source: int) -> Program:
    if consumer is None:
        outputs = list(program.outputs)
        outputs[pos] = source
        return Program(program.nodes, tuple(outputs), program.space)
    node = program.nodes[consumer]
    inputs = list(node.inputs)
    inputs[pos] = source
    return _replace_node(program, consumer, node.with_inputs(tuple(inputs)))


def _replace_node(program: Program, i: int, node: Node) -> Program:
    nodes = list(program.nodes)
    nodes[i] = node
    return Program(tuple(nodes), program.outputs, program.space)
