"""Programs as arrays, executed by one compiled JAX function (design.md section 6).

Compiling a JAX function costs about a second; running a small program costs microseconds. So a
program is never compiled: it is lowered to arrays (op codes, argument indices, constants) and run by
an interpreter (`lax.switch` over ops inside a `lax.scan` over nodes) that takes the program as data.
Spaces jit the interpreter once, inside whatever uses the program (a loss, a training loop), and vmap
it over batches of programs; batches are padded to a few fixed sizes so the number of compilations
stays bounded whatever the batch.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from evolve.ops import CONST, INPUT, Vocabulary
from evolve.program import Program


def enable_compilation_cache(path: str | None = None) -> None:
    """Persist compiled functions on disk so the next process starts warm."""
    path = path or os.environ.get("EVOLVE_JAX_CACHE", os.path.expanduser("~/.cache/evolve/jax"))
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LoweredPrograms:
    """A batch of programs as arrays (leading axis: program; numpy, so it crosses process borders).

    opcodes: int32 [B, max_nodes]; index into the interpreter's branch table; inputs and padding are no-ops.
    args: int32 [B, max_nodes, max_arity]; the node indices each node reads (0 where unused).
    consts: float32 [B, max_nodes]; the value of constant nodes (0 elsewhere).
    outputs: int32 [B, n_outputs]; the nodes whose values are the program's results.
    """

    opcodes: np.ndarray
    args: np.ndarray
    consts: np.ndarray
    outputs: np.ndarray

    def __len__(self) -> int:
        return self.opcodes.shape[0]


class Interpreter:
    """Lowers programs of one vocabulary to arrays, and runs them as a pure JAX function."""

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        self.max_nodes = vocab.max_nodes
        self.max_arity = max([op.arity for op in vocab.ops] + [1])
        self.n_inputs = len(vocab.inputs)
        self._opcode = {op.name: k for k, op in enumerate(vocab.ops)}
        self._const_code = len(vocab.ops)
        self._noop_code = len(vocab.ops) + 1

    # ------------------------------------------------------------------ lowering
    def lower(self, programs: Sequence[Program], pad_to: int | None = None) -> LoweredPrograms:
        """Arrays for `programs`, padded with no-op programs to `pad_to` rows."""
        rows = pad_to or len(programs)
        n_out = len(self.vocab.output_types)
        opcodes = np.full((rows, self.max_nodes), self._noop_code, np.int32)
        args = np.zeros((rows, self.max_nodes, self.max_arity), np.int32)
        consts = np.zeros((rows, self.max_nodes), np.float32)
        outputs = np.zeros((rows, n_out), np.int32)
        for b, program in enumerate(programs):
            for i, node in enumerate(program.nodes):
                if node.op == INPUT:
                    continue
                if node.op == CONST:
                    opcodes[b, i] = self._const_code
                    consts[b, i] = node.value
                else:
                    opcodes[b, i] = self._opcode[node.op]
                    args[b, i, : len(node.inputs)] = node.inputs
            outputs[b] = program.outputs
        return LoweredPrograms(opcodes, args, consts, outputs)

    # ------------------------------------------------------------------ running
    def run(self, program: LoweredPrograms, inputs: jnp.ndarray) -> jnp.ndarray:
        """Run ONE lowered program (no batch axis) on `inputs` [n_inputs, *shape] -> [n_outputs, *shape].

        Pure and traceable: jit it, vmap it over programs or data, put it inside a training loop.
        """
        shape = inputs.shape[1:]
        dtype = inputs.dtype
        branches = [_op_branch(op.fn, op.arity) for op in self.vocab.ops]
        branches.append(lambda argv, c: jnp.full(shape, c, dtype))  # const
        branches.append(lambda argv, c: jnp.zeros(shape, dtype))  # no-op (padding)

        def step(buffer, i):
            argv = tuple(buffer[program.args[i, k]] for k in range(self.max_arity))
            value = jax.lax.switch(program.opcodes[i], branches, argv, program.consts[i])
            return buffer.at[i].set(value.astype(dtype)), None

        buffer = jnp.zeros((self.max_nodes, *shape), dtype).at[: self.n_inputs].set(inputs)
        buffer, _ = jax.lax.scan(step, buffer, jnp.arange(self.n_inputs, self.max_nodes))
        return buffer[program.outputs]


def _op_branch(fn, arity):
    return lambda argv, c: fn(*argv[:arity])


def bucket_size(n: int, smallest: int = 8) -> int:
    """The padded batch size for n programs: the next power of two (at least `smallest`)."""
    size = smallest
    while size < n:
        size *= 2
    return size
