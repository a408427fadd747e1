"""The evaluator of boolean circuits: every circuit of a batch on the whole truth table, in one call
to a compiled, vmapped interpreter.

A circuit is never compiled. The interpreter takes programs as arrays (`Interpreter.lower`), so one
`jax.jit(jax.vmap(interpreter.run))` serves every batch; batches are padded to a few fixed sizes
(`bucket_size`), so it compiles once per size, not once per batch or per circuit.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from evolve.interpreter import Interpreter, bucket_size
from evolve.ops import Vocabulary
from evolve.program import Program
from evolve.space import Evaluation, Evaluator


class TruthTableEvaluator(Evaluator):
    """table: float32 [bits, rows], the circuit's inputs; expected: bool [rows], the target's outputs."""

    def __init__(self, vocabulary: Vocabulary, table: np.ndarray, expected: np.ndarray):
        self.interpreter = Interpreter(vocabulary)
        self.table = jnp.asarray(table)
        self.expected = expected
        self.run = jax.jit(jax.vmap(self.interpreter.run, in_axes=(0, None)))  # over programs

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        lowered = self.interpreter.lower(programs, pad_to=bucket_size(len(programs)))
        outputs = np.asarray(self.run(lowered, self.table))[: len(programs), 0]  # [programs, rows]
        right = (outputs > 0.5) == self.expected
        rows = right.shape[1]
        return [
            Evaluation(float(r.mean()), {"correct": int(r.sum()), "rows": rows, "solved": bool(r.all())})
            for r in right
        ]
