"""A search space: boolean circuits that compute a target function of a few bits.

Programs are circuits of and / or / not gates over the inputs x0..x{bits-1}; a circuit's fitness is
the fraction of the target's truth table it gets right, and it is solved when it gets every row.
Targets: "majority" (more than half the bits are 1), "parity" (an odd number of bits are 1) and
"multiplexer" (the first k bits address one of the next 2**k bits; bits = 3, 6 or 11).

This module is the grammar: what circuits look like and how they change. It imports neither JAX
nor the evaluator itself, so `evolve plugins`, `show` and `top` stay fast; the evaluator
(truth_table.py) is imported only where evaluations run.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

import evolve
from evolve.errors import OptionError
from evolve.ops import Input, Op, Vocabulary
from evolve.program import Program
from evolve.space import Evaluator

BIT = "bit"


# Gates as arithmetic on 0/1 values: plain operators, so they run inside the compiled JAX interpreter
# without this module importing JAX, and each maps {0, 1} to {0, 1}.
def gate_and(a, b):
    return a * b


def gate_or(a, b):
    return a + b - a * b


def gate_not(a):
    return 1 - a


GATES = (
    Op("and", (BIT, BIT), BIT, gate_and),
    Op("or", (BIT, BIT), BIT, gate_or),
    Op("not", (BIT,), BIT, gate_not),
)
PYTHON = {"and": "({} and {})", "or": "({} or {})", "not": "(not {})"}


def truth_table(bits: int) -> np.ndarray:
    """float32 [bits, 2**bits]: row r of the table has bit i of r in line i."""
    rows = np.arange(2**bits)
    return np.stack([(rows >> i) & 1 for i in range(bits)]).astype(np.float32)


def majority(table: np.ndarray) -> np.ndarray:
    return table.sum(axis=0) * 2 > table.shape[0]


def parity(table: np.ndarray) -> np.ndarray:
    return table.sum(axis=0) % 2 == 1


def multiplexer(table: np.ndarray) -> np.ndarray:
    k = {3: 1, 6: 2, 11: 3}[table.shape[0]]
    address = sum(table[i].astype(int) << i for i in range(k))
    return table[k + address, np.arange(table.shape[1])] == 1


TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "majority": majority,
    "parity": parity,
    "multiplexer": multiplexer,
}


class BooleanCircuits(evolve.SearchSpace):
    export_formats = ("json", "python")

    def __init__(self, target: str = "majority", bits: int = 3, max_nodes: int = 24):
        """target: majority, parity or multiplexer. bits: how many inputs (multiplexer: 3, 6 or 11)."""
        if target not in TARGETS:
            raise OptionError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        if not 2 <= bits <= 12:
            raise OptionError("bits must be between 2 and 12")
        if target == "multiplexer" and bits not in (3, 6, 11):
            raise OptionError("a multiplexer has 3, 6 or 11 bits")
        if max_nodes <= bits:
            raise OptionError(f"max_nodes must be more than bits ({bits})")
        self.target = target
        self.bits = bits
        self._vocab = Vocabulary(
            inputs=tuple(Input(f"x{i}", BIT) for i in range(bits)),
            output_types=(BIT,),
            ops=GATES,
            max_nodes=max_nodes,
        )

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    def build_evaluator(self) -> Evaluator:
        from evolve_plugin_example.truth_table import TruthTableEvaluator  # JAX: only where evaluations run

        table = truth_table(self.bits)
        return TruthTableEvaluator(self._vocab, table, TARGETS[self.target](table))

    def describe(self, program: Program) -> str:
        """The circuit as one Python expression, e.g. `((x0 and x1) or (not x2))`."""
        return self._expression(program)

    def export(self, program: Program, format: str) -> str:
        self.check_export_format(format)
        if format == "python":
            names = ", ".join(i.name for i in self._vocab.inputs)
            return f"def circuit({names}):\n    return {self._expression(program)}\n"
        return program.to_json(indent=2)

    def _expression(self, program: Program) -> str:
        text: list[str] = []
        for i, node in enumerate(program.nodes):
            if i < self.bits:
                text.append(self._vocab.inputs[i].name)
            else:
                text.append(PYTHON[node.op].format(*(text[j] for j in node.inputs)))
        return text[program.outputs[0]]


@evolve.hookimpl
def evolve_search_spaces():
    return {"boolean-circuits": BooleanCircuits}
