"""Program and Node: the typed DAG every search space's programs are.

A program is a tuple of nodes in single-static-assignment order: each node names an op and the indices
of earlier nodes it reads. The first nodes are the space's inputs; `outputs` names the result nodes.
Programs are plain data: JSON is their one storage and exchange format, and nothing in a program file
can run code.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from typing import Any

import networkx as nx

from evolve.errors import ProgramError
from evolve.ops import CONST, INPUT, Vocabulary

FORMAT = "evolve.program"
VERSION = 1


@dataclasses.dataclass(frozen=True)
class Node:
    """One SSA node: `op` applied to the values of the nodes at `inputs` (all earlier).

    `value` is set only on constant nodes (`op == "const"`).
    """

    op: str
    inputs: tuple[int, ...] = ()
    value: float | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    """A typed DAG. Equality and hashing are by computation, not spelling (see `digest`)."""

    nodes: tuple[Node, ...]
    outputs: tuple[int, ...]
    space: str

    # ----------------------------------------------------------------- identity
    @functools.cached_property
    def digest(self) -> str:
        """Canonical hash: each node hashed from its op, value and its inputs' hashes, the inputs of
        commutative ops sorted. Dead nodes and node order do not matter, so `a+b`, `b+a` and a copy
        with unused nodes are one program."""
        commutative = _COMMUTATIVE_HINT.get(self.space, frozenset())
        node_hashes: list[str] = []
        for i, node in enumerate(self.nodes):
            if node.op == INPUT:
                parts = [INPUT, str(i)]
            else:
                args = [node_hashes[j] for j in node.inputs]
                if node.op in commutative or node.op in _ALWAYS_COMMUTATIVE:
                    args.sort()
                parts = [node.op, repr(node.value), *args]
            node_hashes.append(_hash("|".join(parts)))
        return _hash("||".join([self.space, *(node_hashes[o] for o in self.outputs)]))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Program) and self.digest == other.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def num_inputs(self) -> int:
        return sum(1 for n in self.nodes if n.op == INPUT)

    # ----------------------------------------------------------------- validity
    def validate(self, vocab: Vocabulary) -> "Program":
        """Check every rule; raise ProgramError naming the node and the rule it breaks."""
        n_in = len(vocab.inputs)
        ops = vocab.op_by_name
        if len(self.nodes) > vocab.max_nodes:
            raise ProgramError(f"program has {len(self.nodes)} nodes; the limit is {vocab.max_nodes}")
        if len(self.nodes) < n_in:
            raise ProgramError(f"program has {len(self.nodes)} nodes but the space has {n_in} inputs")
        types: list[str] = []
        for i, node in enumerate(self.nodes):
            where = f"node {i} ({node.op})"
            if i < n_in:
                if node.op != INPUT or node.inputs:
                    raise ProgramError(f"{where}: the first {n_in} nodes must be inputs with no arguments")
                types.append(vocab.inputs[i].type)
                continue
            if node.op == INPUT:
                raise ProgramError(f"{where}: inputs may only be the first {n_in} nodes")
            if node.op == CONST:
                if vocab.const_type is None:
                    raise ProgramError(f"{where}: this space has no constants")
                if node.inputs:
                    raise ProgramError(f"{where}: a constant reads no nodes")
                if not isinstance(node.value, (int, float)) or not math.isfinite(node.value):
                    raise ProgramError(f"{where}: a constant needs a finite value, got {node.value!r}")
                types.append(vocab.const_type)
                continue
            op = ops.get(node.op)
            if op is None:
                raise ProgramError(f"{where}: unknown op; this space has {sorted(vocab.op_names)}")
            if node.value is not None:
                raise ProgramError(f"{where}: only constants carry a value")
            if len(node.inputs) != op.arity:
                raise ProgramError(f"{where}: takes {op.arity} inputs, got {len(node.inputs)}")
            for pos, j in enumerate(node.inputs):
                if not isinstance(j, int) or not 0 <= j < i:
                    raise ProgramError(f"{where}: input {pos} refers to node {j}, which is not an earlier node")
                if types[j] != op.input_types[pos]:
                    raise ProgramError(
                        f"{where}: input {pos} must be of type {op.input_types[pos]}, "
                        f"but node {j} is of type {types[j]}"
                    )
            types.append(op.output_type)
        if len(self.outputs) != len(vocab.output_types):
            raise ProgramError(f"program has {len(self.outputs)} outputs; the space needs {len(vocab.output_types)}")
        for k, o in enumerate(self.outputs):
            if not isinstance(o, int) or not 0 <= o < len(self.nodes):
                raise ProgramError(f"output {k} refers to node {o}, which does not exist")
            if types[o] != vocab.output_types[k]:
                raise ProgramError(f"output {k} must be of type {vocab.output_types[k]}, but node {o} is {types[o]}")
        return self

    def node_types(self, vocab: Vocabulary) -> list[str]:
        """The type of every node's value (the program must be valid)."""
        ops = vocab.op_by_name
        types = []
        for i, node in enumerate(self.nodes):
            if node.op == INPUT:
                types.append(vocab.inputs[i].type)
            elif node.op == CONST:
                types.append(vocab.const_type)
            else:
                types.append(ops[node.op].output_type)
        return types

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
                nodes.append(dataclasses.replace(node, inputs=tuple(new_index[j] for j in node.inputs)))
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
            nodes.append(d)
        return {"format": FORMAT, "version": VERSION, "space": self.space, "nodes": nodes, "outputs": list(self.outputs)}

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent)

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
                nodes.append(Node(d["op"], tuple(inputs), None if value is None else float(value)))
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
    def from_json(cls, text: str) -> "Program":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ProgramError(f"program is not valid JSON: {e}") from None
        return cls.from_dict(data)

    # ----------------------------------------------------------------- graph
    def to_networkx(self) -> nx.DiGraph:
        """A DiGraph: node attributes `op`, `value`, `kind` (input/const/op/output); edge attribute
        `position` (which argument of the consumer), so `a-b` and `b-a` differ."""
        g = nx.DiGraph()
        outputs = set(self.outputs)
        for i, node in enumerate(self.nodes):
            kind = INPUT if node.op == INPUT else CONST if node.op == CONST else "op"
            g.add_node(i, op=node.op, value=node.value, kind=kind, is_output=i in outputs)
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
        body = "; ".join(
            f"{i}={n.op}" + (f"({','.join(map(str, n.inputs))})" if n.inputs else "") + (f"[{n.value:g}]" if n.value is not None else "")
            for i, n in enumerate(self.nodes)
        )
        return f"Program<{self.space}: {body} -> {list(self.outputs)}>"


# Ops commutative in every space; a space may register more via `register_commutative`.
_ALWAYS_COMMUTATIVE = frozenset({"add", "mul", "min", "max"})
_COMMUTATIVE_HINT: dict[str, frozenset[str]] = {}


def register_commutative(space: str, vocab: Vocabulary) -> None:
    """Tell the canonical hash which ops of `space` are commutative (called by SearchSpace)."""
    _COMMUTATIVE_HINT[space] = frozenset(op.name for op in vocab.ops if op.commutative)


def _hash(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
