"""Where a program came from: its ancestors back to the initial population, and what changed at
each step.

The store records each individual's parent (the program it was mutated from; None for the initial
population), so a lineage is followed parent by parent. A step may hold several mutations (PAM-RT
evaluates the n-th child of a mutation chain), so a change is described by comparing the two
programs' live nodes, not by naming one mutation.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Mapping, Sequence

from evolve.ops import CONST, INPUT
from evolve.population import Individual
from evolve.program import Program


@dataclasses.dataclass(frozen=True)
class Step:
    individual: Individual
    change: str  # what differs from the previous step's program ("initial program" for the first)


def ancestry(individuals: Mapping[int, Individual], last: int, input_names: Sequence[str] = ()) -> list[Step]:
    """The lineage ending at individual `last`, oldest first (`input_names`: the space's inputs, to
    name them in the changes)."""
    chain: list[Individual] = []
    seen: set[int] = set()
    current: int | None = last
    while current is not None and current in individuals and current not in seen:
        seen.add(current)
        chain.append(individuals[current])
        current = individuals[current].parent
    chain.reverse()
    steps = [Step(chain[0], "initial program" if chain[0].parent is None else "ancestors not recorded")]
    steps += [Step(child, change(parent.program, child.program, input_names)) for parent, child in zip(chain, chain[1:])]
    return steps


def change(parent: Program, child: Program, input_names: Sequence[str] = ()) -> str:
    """What the child computes differently from its parent, in words: ops added and removed,
    constants changed, or arguments rewired."""
    if parent.digest == child.digest:
        return "computes the same (only unused nodes changed)"
    before, after = _live_parts(parent, input_names), _live_parts(child, input_names)
    added = after - before
    removed = before - after
    words = []
    if added["op"] or removed["op"]:
        words += [f"added {_listing(added['op'])}" if added["op"] else "",
                  f"removed {_listing(removed['op'])}" if removed["op"] else ""]
    if added["const"] or removed["const"]:
        words.append(f"constants {_listing(removed['const']) or 'none'} -> {_listing(added['const']) or 'none'}")
    if added["input"] or removed["input"]:
        words += [f"now reads {_listing(added['input'])}" if added["input"] else "",
                  f"no longer reads {_listing(removed['input'])}" if removed["input"] else ""]
    words = [w for w in words if w]
    return "; ".join(words) if words else "rewired arguments"


def _live_parts(program: Program, input_names: Sequence[str]) -> "_Parts":
    """Counts of the live ops, constants and read inputs of a program, each keyed by kind."""
    pruned = program.pruned()
    read = {j for node in pruned.nodes for j in node.inputs} | set(pruned.outputs)
    parts: dict[str, collections.Counter] = {"op": collections.Counter(), "const": collections.Counter(),
                                             "input": collections.Counter()}
    for i, node in enumerate(pruned.nodes):
        if node.op == INPUT:
            if i in read:
                parts["input"][input_names[i] if i < len(input_names) else f"input {i + 1}"] += 1
        elif node.op == CONST:
            parts["const"][f"{node.value:.4g}"] += 1
        else:
            parts["op"][node.op] += 1
    return _Parts(parts)


class _Parts(dict):
    """Per-kind counters that subtract kind by kind."""

    def __sub__(self, other: "_Parts") -> "_Parts":
        return _Parts({kind: self[kind] - other[kind] for kind in self})


def _listing(counts: collections.Counter) -> str:
    return ", ".join(name if n == 1 else f"{n} x {name}" for name, n in sorted(counts.items()))
