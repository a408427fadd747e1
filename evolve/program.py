"""Program and Node: the typed DAG every search space's programs are.

A program is a tuple of nodes in single-static-assignment order: each node names an op and the indices
of earlier nodes it reads. The first nodes are the space's inputs; `outputs` names the result nodes.
Programs are plain data: JSON is their one storage and exchange format, and nothing in a program file
can run code. A program's identity (`digest`) needs no vocabulary, so programs can be compared and
stored wherever they are handled.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from typing import TYPE_CHECKING, Any

from evolve.errors import ProgramError
from evolve.ops import COMMUTATIVE_NAMES, CONST, INPUT, Op, Vocabulary

if TYPE_CHECKING:
    import networkx as nx

FORMAT = "evolve.program"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class Node:
    """One SSA node: `op` applied to the values of the nodes at `inputs` (all earlier).

    `value` is set only on constant nodes (`op == "const"`); `type` only on a constant that is not of
    the space's default constant type (None means the first of `Vocabulary.const_types`; naming the
    default is valid, but another spelling to the canonical hash, so mutations never do).
    `unordered` is set exactly on the nodes of variadic ops: their inputs are a set of distinct nodes,
    and the canonical hash ignores their order (it cannot ask the vocabulary which ops are variadic).
    """

    op: str
    inputs: tuple[int, ...] = ()
    value: float | None = None
    type: str | None = None
    unordered: bool = False

    def with_inputs(self, inputs: tuple[int, ...]) -> "Node":
        """This node reading other nodes (what pruning and mutation do most; faster than replace)."""
        return Node(self.op, inputs, self.value, self.type, self.unordered)


class Spelling:
    """A program's nodes and outputs as a dictionary key, hashed once: a tuple of nodes hashes every
    node each time it is looked up, and the predictor looks up each child of a mutation chain
    several times (about 30 nodes each, late in a symbolic-regression run)."""

    __slots__ = ("nodes", "outputs", "_hash")

    def __init__(self, nodes: tuple[Node, ...], outputs: tuple[int, ...]):
        self.nodes, self.outputs = nodes, outputs
        self._hash = hash((nodes, outputs))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Spelling) and self._hash == other._hash
                and self.nodes == other.nodes and self.outputs == other.outputs)


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    """A typed DAG. Equality and hashing are by computation, not spelling (see `digest`)."""

    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]
    space: str

    # ----------------------------------------------------------------- identity
    @functools.cached_property
    def digest(self) -> str:
        """Canonical hash: each node hashed from its op, value, constant type and its inputs' hashes,
        the inputs of add, mul, min, max (commutative in every space, see ops.COMMUTATIVE_NAMES) and of
        unordered (variadic) nodes sorted. Dead nodes and node order do not matter, so `a+b`, `b+a`
        and a copy with unused nodes are one program. Other ops declared commutative are hashed in
        order: this hash depends on nothing but the program."""
        node_hashes: list[str] = []
        for i, node in enumerate(self.nodes):
            if node.op == INPUT:
                parts = [INPUT, str(i)]
            else:
                args = [node_hashes[j] for j in node.inputs]
                if node.unordered or node.op in COMMUTATIVE_NAMES:
                    args.sort()
                type_ = [] if node.type is None else [f"type={node.type}"]
                parts = [node.op, repr(node.value), *type_, *args]
            node_hashes.append(_hash("|".join(parts)))
        return _hash("||".join([self.space, *(node_hashes[o] for o in self.outputs)]))

    @functools.cached_property
    def spelling(self) -> "Spelling":
        """The program as written (node order, argument order, dead nodes and all): the key of what
        depends on more than what it computes, such as its graph encoding."""
        return Spelling(self.nodes, self.outputs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Program) and self.digest == other.digest

    def __reduce__(self):
        """Pickled as its data alone: what it remembers (digest, JSON, the vocabulary it passed, its
        types) is remade where it is needed. The vocabulary holds the ops' functions, which the
        standard pickle cannot carry and Ray's would copy into every task sent to a worker."""
        return (type(self), (self.nodes, self.outputs, self.space))

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def num_inputs(self) -> int:
        return sum(1 for n in self.nodes if n.op == INPUT)

    @property
    def num_edges(self) -> int:
        """How many arguments all nodes read together (x*x counts two); outputs are not edges."""
        return sum(len(n.inputs) for n in self.nodes)

    # ----------------------------------------------------------------- validity
    def validate(self, vocab: Vocabulary) -> "Program":
        """Check every rule, the space's own last; raise ProgramError naming the node and the rule it breaks.
        A program remembers the last vocabulary it passed (programs are immutable), so the engine's
        check of a proposal that mutation has just validated costs nothing."""
        if self.__dict__.get("_valid_in") is vocab:
            return self
        n_in = len(vocab.inputs)
        if len(self.nodes) > vocab.max_nodes:
            raise ProgramError(f"program has {len(self.nodes)} nodes; the limit is {vocab.max_nodes}")
        if len(self.nodes) < n_in:
            raise ProgramError(f"program has {len(self.nodes)} nodes but the space has {n_in} inputs")
        types: list[str] = []
        ops: list[Op | None] = []
        for i, node in enumerate(self.nodes):
            try:
                type_, op = _check_node(node, i, n_in, types, vocab)
            except ProgramError as e:  # named here: a name built for every valid node slowed validation by a fifth
                raise ProgramError(f"node {i} ({node.op}): {e}") from None
            types.append(type_)
            ops.append(op)
        if len(self.outputs) != len(vocab.output_types):
            raise ProgramError(f"program has {len(self.outputs)} outputs; the space needs {len(vocab.output_types)}")
        for k, o in enumerate(self.outputs):
            if not isinstance(o, int) or not 0 <= o < len(self.nodes):
                raise ProgramError(f"output {k} refers to node {o}, which does not exist")
            if types[o] != vocab.output_types[k].name:
                raise ProgramError(f"output {k} must be of type {vocab.output_types[k]}, but node {o} is {types[o]}")
        broken = vocab.broken_rule(self)
        if broken is not None:
            raise ProgramError(f"program breaks a rule of the space: {broken}")
        self.__dict__["_valid_in"] = vocab  # a frozen dataclass: set as cached_property sets its values
        self.__dict__["_typed"] = (vocab, types, ops)
        return self

    def node_types(self, vocab: Vocabulary) -> list[str]:
        """The type (name) of every node's value (the program must be valid)."""
        return self.node_types_and_ops(vocab)[0]

    def node_types_and_ops(self, vocab: Vocabulary) -> tuple[list[str], list[Op | None]]:
        """The type (name) of every node's value, and the op each node runs (None for inputs and
        constants); overloads are resolved by argument types. The program must be valid.

        Remembered per vocabulary (a mutation chain asks it of each program it mutates, which
        `validate` has just typed); the lists returned are the caller's own."""
        typed = self.__dict__.get("_typed")
        if typed is not None and typed[0] is vocab:
            return list(typed[1]), list(typed[2])
        types: list[str] = []
        ops: list[Op | None] = []
        for i, node in enumerate(self.nodes):
            if node.op == INPUT:
                types.append(vocab.inputs[i].type.name)
                ops.append(None)
            elif node.op == CONST:
                types.append(vocab.const_type_of(node.type).name)
                ops.append(None)
            else:
                overloads = vocab.overloads(node.op)
                op = overloads[0] if len(overloads) == 1 else vocab.resolve(node.op, [types[j] for j in node.inputs])
                types.append(op.output_type.name)
                ops.append(op)
        self.__dict__["_typed"] = (vocab, types, ops)
        return list(types), list(ops)

    # ----------------------------------------------------------------- pruning
    def live(self) -> list[bool]:
        """Which nodes an output reads, directly or not (inputs always count as live)."""
        live = [node.op == INPUT for node in self.nodes]
        stack = list(self.outputs)
        while stack:
            i = stack.pop()
            if not live[i]:
                live[i] = True
                stack.extend(self.nodes[i].inputs)
        return live

    def pruned(self) -> "Program":
        """The same computation without the nodes no output reads."""
        keep = self.live()
        if all(keep):
            return self
        new_index: dict[int, int] = {}
        nodes = []
        for i, node in enumerate(self.nodes):
            if keep[i]:
                new_index[i] = len(nodes)
                nodes.append(node.with_inputs(tuple(new_index[j] for j in node.inputs)))
        return Program(tuple(nodes), tuple(new_index[o] for o in self.outputs), self.space)

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        nodes = []
        for node in self.nodes:
            d: dict[str, Any] = {"op": node.op}
            if node.inputs:
                d["inputs"] = list(node.inputs)
            if node.value is not None:
                d["value"] = node.value
            if node.type is not None:
                d["type"] = node.type
            if node.unordered:
                d["unordered"] = True
            nodes.append(d)
        return {"format": FORMAT, "version": VERSION, "space": self.space, "nodes": nodes, "outputs": list(self.outputs)}

    def to_json(self, indent: int | None = None) -> str:
        return self._compact_json if indent is None else json.dumps(self.to_dict(), indent=indent)

    @functools.cached_property
    def _compact_json(self) -> str:
        """Made once: a run writes each program to its store and, in every predictor checkpoint, each
        program of the replay buffer again (thousands, every 200 recorded individuals)."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Any) -> "Program":
        """Read a program; structure errors raise ProgramError (types are checked by `validate`)."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ProgramError(f"not an evolve program: expected an object with \"format\": \"{FORMAT}\"")
        if data.get("version") != VERSION:
            raise ProgramError(f"unsupported program version {data.get('version')!r}; this evolve reads version {VERSION}")
        try:
            nodes = []
            for i, d in enumerate(data["nodes"]):
                if not isinstance(d, dict) or not isinstance(d.get("op"), str):
                    raise ProgramError(f"node {i}: expected an object with a string \"op\"")
                inputs = d.get("inputs", [])
                if not isinstance(inputs, list) or not all(isinstance(j, int) and not isinstance(j, bool) for j in inputs):
                    raise ProgramError(f"node {i}: \"inputs\" must be a list of node indices")
                value = d.get("value")
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise ProgramError(f"node {i}: \"value\" must be a number")
                try:
                    value = None if value is None else float(value)
                except OverflowError:
                    raise ProgramError(f"node {i}: \"value\" is a whole number of {len(str(value))} digits,"
                                       " too large for a constant (at most about 1.8e308)") from None
                type_ = d.get("type")
                if type_ is not None and not isinstance(type_, str):
                    raise ProgramError(f"node {i}: \"type\" must be a type name")
                unordered = d.get("unordered", False)
                if not isinstance(unordered, bool):
                    raise ProgramError(f"node {i}: \"unordered\" must be true or false")
                nodes.append(Node(d["op"], tuple(inputs), value, type_, unordered))
            outputs = data["outputs"]
            if not isinstance(outputs, list) or not all(isinstance(o, int) and not isinstance(o, bool) for o in outputs):
                raise ProgramError("\"outputs\" must be a list of node indices")
            space = data["space"]
            if not isinstance(space, str):
                raise ProgramError("\"space\" must be a string")
        except KeyError as e:
            raise ProgramError(f"program is missing the field {e.args[0]!r}") from None
        except TypeError:
            raise ProgramError("\"nodes\" must be a list of node objects") from None
        return cls(tuple(nodes), tuple(outputs), space)

    @classmethod
    def from_json(cls, text: str | bytes) -> "Program":
        """Read a program from JSON text; anything that is not one (bytes that are not UTF-8, a
        number of thousands of digits, nesting deeper than the parser goes) raises ProgramError."""
        try:
            data = json.loads(text, parse_int=_parse_int)
        except json.JSONDecodeError as e:
            raise ProgramError(f"program is not valid JSON: {e}") from None
        except UnicodeDecodeError as e:
            raise ProgramError(f"program is not UTF-8 text (byte at offset {e.start})") from None
        except RecursionError:
            raise ProgramError("program is not valid JSON: it is nested too deeply") from None
        return cls.from_dict(data)

    # ----------------------------------------------------------------- graph
    def to_networkx(self) -> "nx.DiGraph":
        """A DiGraph: node attributes `op`, `value`, `type` (a constant's, or None), `unordered`, `kind`
        (input/const/op), `is_output`; edge attribute `position` (which argument of the consumer), so
        `a-b` and `b-a` differ."""
        import networkx as nx  # only analysis needs it; the grammar of a space loads without

        g = nx.DiGraph()
        outputs = set(self.outputs)
        for i, node in enumerate(self.nodes):
            kind = INPUT if node.op == INPUT else CONST if node.op == CONST else "op"
            g.add_node(
                i, op=node.op, value=node.value, type=node.type, unordered=node.unordered, kind=kind, is_output=i in outputs
            )
        for i, node in enumerate(self.nodes):
            for pos, j in enumerate(node.inputs):
                # A node may read the same input twice (x*x); keep the first position as the edge and
                # count the rest so no argument is lost.
                if g.has_edge(j, i):
                    g.edges[j, i]["positions"].append(pos)
                else:
                    g.add_edge(j, i, position=pos, positions=[pos])
        return g

    def __repr__(self) -> str:
        def show(i: int, n: Node) -> str:
            args = ",".join(map(str, n.inputs))
            text = f"{i}={n.op}" + ((f"{{{args}}}" if n.unordered else f"({args})") if n.inputs else "")
            if n.value is not None:
                text += f"[{n.value:g}" + (f":{n.type}]" if n.type is not None else "]")
            return text

        body = "; ".join(show(i, n) for i, n in enumerate(self.nodes))
        return f"Program<{self.space}: {body} -> {list(self.outputs)}>"


def _check_node(node: Node, i: int, n_in: int, types: list[str], vocab: Vocabulary) -> tuple[str, Op | None]:
    """The type of node `i` and the op it runs (None for inputs and constants), or ProgramError
    naming the rule it breaks (`types`: earlier nodes')."""
    if i < n_in:
        if node.op != INPUT or node.inputs:
            raise ProgramError(f"the first {n_in} nodes must be inputs with no arguments")
        return vocab.inputs[i].type.name, None
    if node.op == INPUT:
        raise ProgramError(f"inputs may only be the first {n_in} nodes")
    if node.op == CONST:
        return _check_constant(node, vocab), None
    op = _check_op_node(node, i, types, vocab)
    return op.output_type.name, op


def _check_constant(node: Node, vocab: Vocabulary) -> str:
    """The type (name) of a constant node, or ProgramError."""
    if not vocab.const_types:
        raise ProgramError("this space has no constants")
    if node.inputs:
        raise ProgramError("a constant reads no nodes")
    if not isinstance(node.value, (int, float)) or not math.isfinite(node.value):
        raise ProgramError(f"a constant needs a finite value, got {node.value!r}")
    if node.unordered:
        raise ProgramError("only the node of a variadic op is unordered")
    type_ = vocab.const_type_of(node.type)
    if type_ is None:
        names = ", ".join(t.name for t in vocab.const_types)
        raise ProgramError(f"a constant of this space is of type {names}, not {node.type!r}")
    return type_.name


def _check_op_node(node: Node, i: int, types: list[str], vocab: Vocabulary) -> Op:
    """The op an op node runs, or ProgramError naming the rule it breaks (`types`: earlier nodes')."""
    overloads = vocab.overloads(node.op)
    if not overloads:
        raise ProgramError(f"unknown op; this space has {sorted(vocab.op_names)}")
    if node.value is not None:
        raise ProgramError("only constants carry a value")
    if node.type is not None:
        raise ProgramError("only constants carry a type")
    single = overloads[0] if len(overloads) == 1 else None
    if single is not None and single.variadic is not None:
        least, most = single.variadic
        if not least <= len(node.inputs) <= most:
            raise ProgramError(f"takes {least} to {most} inputs, got {len(node.inputs)}")
    elif single is not None and len(node.inputs) != single.arity:
        raise ProgramError(f"takes {single.arity} inputs, got {len(node.inputs)}")
    for pos, j in enumerate(node.inputs):
        if not isinstance(j, int) or not 0 <= j < i:
            raise ProgramError(f"input {pos} refers to node {j}, which is not an earlier node")
    arg_types = [types[j] for j in node.inputs]
    if single is not None:
        for pos, j in enumerate(node.inputs):
            expected = single.input_types[0 if single.variadic else pos].name
            if types[j] != expected:
                raise ProgramError(f"input {pos} must be of type {expected}, but node {j} is of type {types[j]}")
        op = single
    else:
        op = vocab.resolve(node.op, arg_types)
        if op is None:
            takes = ", ".join(o.signature for o in overloads)
            raise ProgramError(f"no {node.op} takes ({', '.join(arg_types)}); its overloads take {takes}")
    if op.variadic is not None:
        repeated = next((j for k, j in enumerate(node.inputs) if j in node.inputs[:k]), None)
        if repeated is not None:
            raise ProgramError(f"reads node {repeated} twice; a variadic op reads a set of distinct nodes")
        if not node.unordered:
            raise ProgramError(f"the node of variadic op {op.name} must be marked unordered")
    elif node.unordered:
        raise ProgramError("only the node of a variadic op is unordered")
    return op


#: A node index or a constant written with more digits than this is no usable number: a float holds at
#: most about 1.8e308, and Python parses longer integers only up to a limit.
_MAX_DIGITS = 400


def _parse_int(text: str) -> int:
    """json's integer parser, refusing numbers too long to be a node index or a constant."""
    digits = len(text.lstrip("-"))
    if digits > _MAX_DIGITS:
        raise ProgramError(f"program has a number of {digits} digits; a node index or constant has at most {_MAX_DIGITS}")
    return int(text)


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
