"""Programs as arrays, executed by one compiled JAX function (design.md section 6).

Compiling a JAX function costs about a second; running a small program costs microseconds. So a
program is never compiled: it is lowered to arrays (op codes, argument indices, constants, argument
counts) and run by an interpreter (`lax.switch` over op instances inside a `lax.scan` over nodes)
that takes the program as data. Spaces jit the interpreter once, inside whatever uses the program (a
loss, a training loop), and vmap it over batches of programs; batches are padded to a few fixed sizes
so the number of compilations stays bounded whatever the batch.

Values live in one buffer per type, [max_nodes, *E, *type shape] (E: the element shape shared by all
values of a run, see evolve.ops). Every branch of the switch returns one value per type, its op's
result in its output type's slot and zeros elsewhere, and node i's slot of every buffer is written
with them; a node is only ever read from the buffer of its own type. A vocabulary of one elementwise
type therefore runs exactly the single-buffer interpreter of the first version.

Differentiating through that interpreter (`jax.grad` of a loss that runs a program, as the RL-loss
DQN does every update) is costly: JAX keeps, at every node, the residuals of every branch of the
switch (zeros for those not taken), per type, and its backward pass runs one more switch per node
over all of them; XLA on CPU pays per small kernel, and there were about 1,400 per update.
`Interpreter(vocab, recompute_gradients=True)` runs programs another way, with the same values and
gradients (to float rounding): every value packed into one float32 row of one buffer [max_nodes,
width] (integers are exact to 2**24), a loop that stops after the last op node (programs are padded
with no-ops), and a hand-written backward pass (jax.custom_vjp) that keeps only the final buffer and
walks the nodes backwards, each recomputing its own op's pullback from the values it read. It
differentiates with respect to the inputs, the context's float arrays (the context must be a pytree)
and the constants. One DQN update of the RL-loss space went from 640 to about 130 us of CPU (rl_eval.py).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np

from evolve.ops import CONST, INPUT, Op, ValueType, Vocabulary
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
    counts: int32 [B, max_nodes]; how many argument slots a variadic op's node fills (0 elsewhere).
    """

    opcodes: np.ndarray
    args: np.ndarray
    consts: np.ndarray
    outputs: np.ndarray
    counts: np.ndarray

    def __len__(self) -> int:
        return self.opcodes.shape[0]


class Interpreter:
    """Lowers programs of one vocabulary to arrays, and runs them as a pure JAX function.

    Branch table: the vocabulary's ops (overloads are separate branches), then one constant branch
    per constant type, then the no-op.

    recompute_gradients: run with the packed buffer and the hand-written backward pass (module
    docstring), for programs that are differentiated through; the plain interpreter otherwise."""

    def __init__(self, vocab: Vocabulary, recompute_gradients: bool = False):
        self.vocab = vocab
        self.recompute_gradients = recompute_gradients
        self.max_nodes = vocab.max_nodes
        self.max_arity = max([op.arity for op in vocab.ops] + [1])
        self.n_inputs = len(vocab.inputs)
        self.types: tuple[ValueType, ...] = tuple(vocab.types.values())
        self._type_index = {t.name: k for k, t in enumerate(self.types)}
        # one op per name: looked up by name; overloaded names: by name and argument types
        self._opcode = {op.name: k for k, op in enumerate(vocab.ops) if len(vocab.overloads(op.name)) == 1}
        self._overload_code = {op: k for k, op in enumerate(vocab.ops)}
        self._const_code = {t.name: len(vocab.ops) + k for k, t in enumerate(vocab.const_types)}
        if vocab.const_types:
            self._const_code[None] = self._const_code[vocab.const_types[0].name]
        self._noop_code = len(vocab.ops) + len(vocab.const_types)
        self._needs_types = vocab.has_overloads
        self._variadic = {op.name for op in vocab.ops if op.variadic}
        # (type, slot) pairs some op reads: each is gathered once per node, outside the switch
        self._reads = sorted({(self._type_index[_slot_type(op, p).name], p) for op in vocab.ops for p in range(op.arity)})

    # ------------------------------------------------------------------ lowering
    def lower(self, programs: Sequence[Program], pad_to: int | None = None) -> LoweredPrograms:
        """Arrays for `programs`, padded with no-op programs to `pad_to` rows."""
        rows = pad_to or len(programs)
        n_out = len(self.vocab.output_types)
        opcodes = np.full((rows, self.max_nodes), self._noop_code, np.int32)
        args = np.zeros((rows, self.max_nodes, self.max_arity), np.int32)
        consts = np.zeros((rows, self.max_nodes), np.float32)
        outputs = np.zeros((rows, n_out), np.int32)
        counts = np.zeros((rows, self.max_nodes), np.int32)
        const_code, opcode, variadic = self._const_code, self._opcode, self._variadic  # hot loop
        for b, program in enumerate(programs):
            node_ops = program.node_types_and_ops(self.vocab)[1] if self._needs_types else None
            for i, node in enumerate(program.nodes):
                if node.op == INPUT:
                    continue
                if node.op == CONST:
                    opcodes[b, i] = const_code[node.type]
                    consts[b, i] = node.value
                    continue
                opcodes[b, i] = opcode[node.op] if node_ops is None else self._overload_code[node_ops[i]]
                args[b, i, : len(node.inputs)] = node.inputs
                if variadic and node.op in variadic:
                    counts[b, i] = len(node.inputs)
            outputs[b] = program.outputs
        return LoweredPrograms(opcodes, args, consts, outputs, counts)

    # ------------------------------------------------------------------ running
    def run(
        self,
        program: LoweredPrograms,
        inputs: jax.Array | Sequence[jax.Array],
        dims: Mapping[str, int] | None = None,
        context: Any = None,
    ) -> jax.Array | tuple[jax.Array, ...]:
        """Run ONE lowered program (no batch axis) on its inputs.

        inputs: [n_inputs, *shape] (all inputs of one shape), or one array per input. Input k of type T
        has shape [*E_k, *T.shape]; the element shapes E_k broadcast to the run's element shape E.
        dims: sizes of the named dimensions of the types' shapes; those an input's shape shows are
        read from it.
        context: given as first argument to the fn of every op with `uses_context`.
        Returns [n_outputs, *E, *T.shape] when all outputs are of one type T, else one array per output.

        Pure and traceable: jit it, vmap it over programs or data, put it inside a training loop.
        """
        stacked = not isinstance(inputs, (list, tuple))
        arrays = jnp.asarray(inputs) if stacked else [jnp.asarray(a) for a in inputs]
        if len(arrays) != self.n_inputs:
            raise ValueError(f"the program takes {self.n_inputs} inputs, got {len(arrays)}")
        input_shapes = [arrays.shape[1:]] * self.n_inputs if stacked else [a.shape for a in arrays]
        dims, element = self._layout(input_shapes, dims)
        shapes = [element + t.resolve(dims) for t in self.types]
        buffers = [jnp.zeros((self.max_nodes, *shape), t.dtype) for t, shape in zip(self.types, shapes)]
        input_types = [self._type_index[inp.type.name] for inp in self.vocab.inputs]
        if stacked and len(set(input_types)) == 1:  # all inputs of one type: one write, as ever
            k = input_types[0]
            rows = jnp.broadcast_to(arrays, (self.n_inputs, *shapes[k])).astype(self.types[k].dtype)
            buffers[k] = buffers[k].at[: self.n_inputs].set(rows)
        else:
            for i, k in enumerate(input_types):
                buffers[k] = buffers[k].at[i].set(jnp.broadcast_to(arrays[i], shapes[k]).astype(self.types[k].dtype))

        out_types = [self._type_index[t.name] for t in self.vocab.output_types]
        if self.recompute_gradients:
            packed = self._run_recomputing_gradients(program, buffers, shapes, context)
            outputs = [_unpack(packed[program.outputs[n]], shapes[k], self.types[k].dtype) for n, k in enumerate(out_types)]
            return jnp.stack(outputs) if len(set(out_types)) == 1 else tuple(outputs)
        buffers = self._forward(program, tuple(buffers), self._branches(shapes, context))
        if len(set(out_types)) == 1:
            return buffers[out_types[0]][program.outputs]
        return tuple(buffers[k][program.outputs[n]] for n, k in enumerate(out_types))

    def _branches(self, shapes: list[tuple[int, ...]], context: Any) -> list:
        """The switch's branches, in branch-table order: each returns one value per type."""
        branches = [self._op_branch(op, shapes, context) for op in self.vocab.ops]
        branches += [self._const_branch(self._type_index[t.name], shapes) for t in self.vocab.const_types]
        branches.append(lambda reads, c, n: tuple(jnp.zeros(s, t.dtype) for s, t in zip(shapes, self.types)))  # no-op
        return branches

    def _forward(self, program: LoweredPrograms, buffers: tuple[jax.Array, ...], branches: list) -> tuple[jax.Array, ...]:
        """The buffers once every node has run (a scan over nodes, a switch over ops per node)."""

        def step(buffers, i):
            reads = [buffers[t][program.args[i, p]] for t, p in self._reads]
            values = jax.lax.switch(program.opcodes[i], branches, reads, program.consts[i], program.counts[i])
            return tuple(buffer.at[i].set(value) for buffer, value in zip(buffers, values)), None

        return jax.lax.scan(step, buffers, jnp.arange(self.n_inputs, self.max_nodes))[0]

    def _end(self, program: LoweredPrograms) -> jax.Array:
        """One past the last node that is not a no-op (padding): the nodes after it change nothing."""
        nodes = jnp.arange(self.max_nodes)
        return jnp.max(jnp.where(program.opcodes != self._noop_code, nodes, self.n_inputs - 1)) + 1

    # ------------------------------------------------------------------ gradients
    def _run_recomputing_gradients(self, program: LoweredPrograms, buffers: list[jax.Array], shapes, context: Any) -> jax.Array:
        """Every node's value, packed (one float32 row per node), computed with a hand-written
        backward pass (class docstring). buffers: the per-type buffers holding the inputs."""
        width = max(int(np.prod(shape, dtype=np.int64)) for shape in shapes)
        input_types = [self._type_index[inp.type.name] for inp in self.vocab.inputs]
        rows = jnp.stack([_pack(buffers[k][i], width) for i, k in enumerate(input_types)])
        packed = jnp.zeros((self.max_nodes, width), jnp.float32).at[: self.n_inputs].set(rows)
        return self._packed_run(shapes, context)(program, packed)

    def _packed_run(self, shapes: list[tuple[int, ...]], context: Any):
        """run(program, packed) -> packed after every node, differentiable with respect to the packed
        inputs, the context's float leaves and the constants by its own backward pass."""
        leaves, treedef = jax.tree.flatten(context)
        differentiable = [k for k, leaf in enumerate(leaves) if _differentiable(leaf)]
        flat_leaves, unravel = jax.flatten_util.ravel_pytree([leaves[k] for k in differentiable])

        def context_of(flat):
            full = list(leaves)
            for k, leaf in zip(differentiable, unravel(flat)):
                full[k] = leaf
            return jax.tree.unflatten(treedef, full)

        def forward(program, packed, flat):
            branches = self._packed_branches(shapes, context_of(flat))

            def step(i, packed):
                value = jax.lax.switch(program.opcodes[i], branches, packed[program.args[i]], program.consts[i], program.counts[i])
                return packed.at[i].set(value)

            return jax.lax.fori_loop(self.n_inputs, self._end(program), step, packed)

        def forward_keeping_values(program, packed, flat):
            final = forward(program, packed, flat)
            return final, (program, final, flat)

        def backward(residuals, packed_ct):
            program, final, flat = residuals
            pullbacks = self._packed_pullbacks(shapes, context_of, flat.size)
            end = self._end(program)

            def step(k, carry):
                packed_ct, flat_ct, consts_ct = carry
                i = end - 1 - k
                args_ct, node_flat_ct, node_const_ct = jax.lax.switch(
                    program.opcodes[i], pullbacks, final[program.args[i]], program.consts[i], program.counts[i], packed_ct[i], flat
                )
                return packed_ct.at[program.args[i]].add(args_ct), flat_ct + node_flat_ct, consts_ct.at[i].set(node_const_ct)

            start = (packed_ct, jnp.zeros_like(flat), jnp.zeros_like(program.consts))
            packed_ct, flat_ct, consts_ct = jax.lax.fori_loop(0, end - self.n_inputs, step, start)
            inputs_only = (jnp.arange(self.max_nodes) < self.n_inputs)[:, None]  # the forward pass overwrites the other rows
            program_ct = dataclasses.replace(jax.tree.map(_zero_cotangent, program), consts=consts_ct)
            return program_ct, jnp.where(inputs_only, packed_ct, 0.0), flat_ct

        run = jax.custom_vjp(forward)
        run.defvjp(forward_keeping_values, backward)
        return lambda program, packed: run(program, packed, flat_leaves)

    def _slot_args(self, op: Op, rows: jax.Array, shapes: list[tuple[int, ...]]) -> list[jax.Array]:
        """An op's arguments from the packed rows of the nodes it reads."""
        types = [self._type_index[_slot_type(op, p).name] for p in range(op.arity)]
        return [_unpack(rows[p], shapes[k], self.types[k].dtype) for p, k in enumerate(types)]

    def _packed_branches(self, shapes: list[tuple[int, ...]], context: Any) -> list:
        """The forward switch's branches on packed rows: each returns its node's packed value."""
        width = max(int(np.prod(shape, dtype=np.int64)) for shape in shapes)

        def op_branch(op):
            return lambda rows, c, count: _pack(self._apply(op, self._slot_args(op, rows, shapes), count, context, shapes), width)

        def const_branch(k):
            return lambda rows, c, count: _pack(jnp.full(shapes[k], c, self.types[k].dtype), width)

        branches = [op_branch(op) for op in self.vocab.ops]
        branches += [const_branch(self._type_index[t.name]) for t in self.vocab.const_types]
        branches.append(lambda rows, c, count: jnp.zeros(width, jnp.float32))  # no-op
        return branches

    def _packed_pullbacks(self, shapes: list[tuple[int, ...]], context_of, n_flat: int) -> list:
        """The backward switch's branches: from a node's packed cotangent, those of the rows it
        read, of the context's float leaves (flat) and of its constant. Each recomputes its op."""

        def zeros(rows):
            return jnp.zeros_like(rows), jnp.zeros(n_flat, jnp.float32), jnp.float32(0)

        def op_pullback(op):
            out = self._type_index[op.output_type.name]

            def pullback(rows, c, count, node_ct, flat):
                if not _differentiable_type(op.output_type):
                    return zeros(rows)
                ct = _unpack(node_ct, shapes[out], op.output_type.dtype)
                if not op.uses_context:
                    rows_ct = jax.vjp(lambda rows: self._apply(op, self._slot_args(op, rows, shapes), count, None, shapes), rows)[1](ct)[0]
                    return rows_ct, jnp.zeros(n_flat, jnp.float32), jnp.float32(0)
                value = lambda rows, flat: self._apply(op, self._slot_args(op, rows, shapes), count, context_of(flat), shapes)  # noqa: E731
                rows_ct, flat_ct = jax.vjp(value, rows, flat)[1](ct)
                return rows_ct, flat_ct, jnp.float32(0)

            return pullback

        def const_pullback(k):
            if not _differentiable_type(self.types[k]):
                return lambda rows, c, count, node_ct, flat: zeros(rows)

            def pullback(rows, c, count, node_ct, flat):
                return jnp.zeros_like(rows), jnp.zeros(n_flat, jnp.float32), jnp.sum(_unpack(node_ct, shapes[k], self.types[k].dtype))

            return pullback

        pullbacks = [op_pullback(op) for op in self.vocab.ops]
        pullbacks += [const_pullback(self._type_index[t.name]) for t in self.vocab.const_types]
        pullbacks.append(lambda rows, c, count, node_ct, flat: zeros(rows))  # no-op
        return pullbacks

    def _layout(self, input_shapes: list[tuple[int, ...]], dims: Mapping[str, int] | None) -> tuple[dict[str, int], tuple[int, ...]]:
        """The sizes of all named dimensions (given, or read from the inputs) and the element shape E."""
        known = dict(dims or {})
        elements = []
        for inp, shape in zip(self.vocab.inputs, input_shapes):
            rule = inp.type.shape
            if len(shape) < len(rule):
                raise ValueError(f"input {inp.name} of type {inp.type.name} needs at least {len(rule)} axes {rule}, got shape {shape}")
            trailing = shape[len(shape) - len(rule) :]
            for d, size in zip(rule, trailing):
                if isinstance(d, str) and known.setdefault(d, size) != size:
                    raise ValueError(f"input {inp.name} has {size} along dimension {d!r}, but {d!r} is {known[d]}")
                if isinstance(d, int) and d != size:
                    raise ValueError(f"input {inp.name} of type {inp.type.name} needs size {d} on axis {rule}, got shape {shape}")
            elements.append(shape[: len(shape) - len(rule)])
        try:
            element = tuple(np.broadcast_shapes(*elements)) if elements else ()
        except ValueError:
            raise ValueError(f"the inputs' element shapes {elements} do not broadcast to one shape") from None
        return known, element

    def _op_branch(self, op: Op, shapes: list[tuple[int, ...]], context: Any):
        out = self._type_index[op.output_type.name]
        where = [self._reads.index((self._type_index[_slot_type(op, p).name], p)) for p in range(op.arity)]

        def branch(reads, c, count):
            return self._fill(out, self._apply(op, [reads[w] for w in where], count, context, shapes), shapes)

        return branch

    def _apply(self, op: Op, args: list[jax.Array], count: jax.Array, context: Any, shapes: list[tuple[int, ...]]) -> jax.Array:
        """The value of `op` on its arguments, in its output type's shape and dtype."""
        if op.variadic:
            args = [jnp.stack(args), jnp.arange(op.arity) < count]
        value = op.fn(context, *args) if op.uses_context else op.fn(*args)
        out = self._type_index[op.output_type.name]
        return _fit(value, shapes[out], op.output_type.dtype, op)

    def _const_branch(self, type_index: int, shapes: list[tuple[int, ...]]):
        dtype = self.types[type_index].dtype
        return lambda reads, c, count: self._fill(type_index, jnp.full(shapes[type_index], c, dtype), shapes)

    def _fill(self, index: int, value: jax.Array, shapes: list[tuple[int, ...]]) -> tuple[jax.Array, ...]:
        """One value per type: `value` for the type at `index`, zeros for the others."""
        return tuple(value if k == index else jnp.zeros(s, t.dtype) for k, (s, t) in enumerate(zip(shapes, self.types)))


def _differentiable(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _differentiable_type(t: ValueType) -> bool:
    return jnp.issubdtype(jnp.dtype(t.dtype), jnp.inexact)


def _zero_cotangent(x: Any) -> Any:
    """A zero cotangent for x: float0 for integer arrays, as JAX requires."""
    return jnp.zeros_like(x) if _differentiable(x) else np.zeros(np.shape(x), jax.dtypes.float0)


def _pack(value: jax.Array, width: int) -> jax.Array:
    """A value as one float32 row of the packed buffer (integers are exact up to 2**24)."""
    flat = jnp.ravel(value).astype(jnp.float32)
    return jnp.pad(flat, (0, width - flat.size))


def _unpack(row: jax.Array, shape: tuple[int, ...], dtype: str) -> jax.Array:
    return row[: int(np.prod(shape, dtype=np.int64))].reshape(shape).astype(dtype)


def _slot_type(op: Op, slot: int) -> ValueType:
    return op.input_types[0 if op.variadic else slot]


def _fit(value: Any, shape: tuple[int, ...], dtype: str, op: Op) -> jax.Array:
    """An op's result broadcast to its output type's shape and cast to its dtype."""
    value = jnp.asarray(value)
    try:
        value = jnp.broadcast_to(value, shape)
    except ValueError:
        raise ValueError(
            f"op {op.name}{op.signature} returned shape {value.shape}, which does not broadcast to "
            f"{shape}, the shape of its output type {op.output_type.name}"
        ) from None
    return value.astype(dtype)


def bucket_size(n: int, smallest: int = 8) -> int:
    """The padded batch size for n programs: the next power of two (at least `smallest`)."""
    size = smallest
    while size < n:
        size *= 2
    return size
