"""Value types and op specs: the vocabulary a search space's programs are written in.

A value type is a name (its identity), a shape rule and a dtype. A value of type T has the shape
[*E, *T.shape]: E, the element shape, is shared by every value of one run (the points of a dataset, a
parameter tensor, a batch of transitions), and T.shape adds trailing axes of fixed sizes or of named
dimensions ("actions") given when the program runs. A type with shape () is elementwise: its values
are just E. A bare string wherever a type is accepted means `ValueType(name)`, elementwise float32,
so spaces written when types were strings keep working unchanged.

An op is data (name, input types, output type, commutative?, variadic?) plus the jax function that
computes it. Several ops may share a name with different input types (overloads, like `add` over
floats and over vectors); a node's op is the one of its name that accepts its arguments' types.

This module imports no jax: op functions import jax.numpy inside their bodies, which only run while
a program is traced, so the grammar of a space loads fast wherever programs are only handled.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from evolve.program import Program

INPUT = "input"  # node kind of a program's inputs (the first nodes)
CONST = "const"  # op name of a constant node; its value lives on the node

#: Op names that are commutative in every space: the canonical hash (`Program.digest`) sorts their
#: inputs without asking any vocabulary. A space whose op of one of these names is not commutative
#: must name it differently; a Vocabulary rejects such an op declared `commutative=False`.
COMMUTATIVE_NAMES = frozenset({"add", "mul", "min", "max"})

#: A program-level validity rule of a space: None when the program obeys it, else why not.
Rule = Callable[["Program"], "str | None"]


@dataclasses.dataclass(frozen=True)
class ValueType:
    """The type of a program value. Its identity is its name: one vocabulary gives one name one shape
    rule and one dtype.

    shape: trailing axes after the element shape, each an int or the name of a dimension resolved
    when the program runs (`Interpreter.run(..., dims={"actions": 4})`). () means elementwise.
    dtype: a numpy dtype name; every value of the type is cast to it.
    """

    name: str
    shape: tuple[int | str, ...] = ()
    dtype: str = "float32"

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a type's name must be a non-empty string, got {self.name!r}")
        shape = tuple(self.shape)
        for d in shape:
            if isinstance(d, bool) or not (isinstance(d, str) and d or isinstance(d, int) and d >= 0):
                raise ValueError(f"type {self.name}: a shape entry is a size >= 0 or a dimension name, got {d!r}")
        try:
            dtype = np.dtype(self.dtype).name
        except TypeError:
            raise ValueError(f"type {self.name}: unknown dtype {self.dtype!r}") from None
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", dtype)

    def resolve(self, dims: Mapping[str, int]) -> tuple[int, ...]:
        """The trailing shape with every named dimension replaced by its size in `dims`."""
        missing = [d for d in self.shape if isinstance(d, str) and d not in dims]
        if missing:
            raise ValueError(f"type {self.name} needs the size of dimension {missing[0]!r}: pass it in dims")
        return tuple(dims[d] if isinstance(d, str) else d for d in self.shape)

    def __str__(self) -> str:
        return self.name


def as_type(type_: str | ValueType) -> ValueType:
    """`type_` as a ValueType: a bare string is an elementwise float32 type of that name."""
    if isinstance(type_, ValueType):
        return type_
    if isinstance(type_, str):
        return ValueType(type_)
    raise TypeError(f"a type is a ValueType or a name, got {type_!r}")


@dataclasses.dataclass(frozen=True)
class Op:
    """One operation.

    fn(*args) computes the value from its arguments, each of shape [*E, *type.shape]. It may return
    any shape that broadcasts to [*E, *output_type.shape]: the interpreter broadcasts the result and
    casts it to the output type's dtype, so an op may reduce a vector to a scalar (sum over the last
    axis) or combine a scalar with a vector (`s[..., None] * v`).

    commutative: whether the order of the inputs matters to the result. None (the default) means
    "yes for add, mul, min, max, no for others" (see COMMUTATIVE_NAMES).
    variadic: (least, most): the op reads between least and most DISTINCT earlier nodes, all of the
    one type in `input_types`, as a set (their order does not matter). Its fn is called as
    `fn(values, mask)`: values [most, *E, *type.shape], the arguments in their slots, padded; mask
    bool [most], True for the slots that hold an argument (see `masked_sum`).
    uses_context: fn is called as `fn(context, *args)`, with the `context` given to
    `Interpreter.run` (data that is not a program value: a network's parameters, its apply function).
    """

    name: str
    input_types: tuple[ValueType, ...]
    output_type: ValueType
    fn: Callable[..., Any] | None = None
    commutative: bool | None = None
    variadic: tuple[int, int] | None = None
    uses_context: bool = False

    def __post_init__(self):
        object.__setattr__(self, "input_types", tuple(as_type(t) for t in self.input_types))
        object.__setattr__(self, "output_type", as_type(self.output_type))
        if self.variadic is not None:
            least, most = self.variadic
            if len(self.input_types) != 1:
                raise ValueError(f"variadic op {self.name} takes inputs of one type, got {len(self.input_types)} types")
            if not 0 <= least <= most or most < 1:
                raise ValueError(f"variadic op {self.name}: need 0 <= least <= most and most >= 1, got {self.variadic}")
            object.__setattr__(self, "variadic", (int(least), int(most)))
        # for `accepts`, the hottest check of mutation and validation
        object.__setattr__(self, "_input_names", tuple(t.name for t in self.input_types))

    @property
    def arity(self) -> int:
        """How many argument slots a node of this op has: its number of inputs, or the most a
        variadic op takes."""
        return self.variadic[1] if self.variadic else len(self.input_types)

    @property
    def is_commutative(self) -> bool:
        return self.name in COMMUTATIVE_NAMES if self.commutative is None else self.commutative

    def accepts(self, arg_types: Sequence[str]) -> bool:
        """Whether a node of this op may read arguments of these types (names), in this order."""
        if self.variadic is None:
            return self._input_names == (arg_types if isinstance(arg_types, tuple) else tuple(arg_types))
        least, most = self.variadic
        return least <= len(arg_types) <= most and all(t == self._input_names[0] for t in arg_types)

    @property
    def signature(self) -> str:
        """The input types as a message shows them: `(real, real)`, or `(cell x 1..6)`."""
        if self.variadic:
            return f"({self._input_names[0]} x {self.variadic[0]}..{self.variadic[1]})"
        return f"({', '.join(self._input_names)})"


@dataclasses.dataclass(frozen=True)
class Input:
    """A named, typed program input (e.g. `x1: real`, `grad: tensor`)."""

    name: str
    type: ValueType

    def __post_init__(self):
        object.__setattr__(self, "type", as_type(self.type))


@dataclasses.dataclass(frozen=True, init=False)
class Vocabulary:
    """What programs of one space may contain: their inputs, output types, ops, constants, size limit
    and validity rules.

    const_types: the types a constant node may have, the first being the type of a constant whose
    node names none; empty when the space has no constants (`const_type=` is the one-type form).
    rules: callables `rule(program) -> None or a message`, the space's own validity rules (e.g. "at
    most 9 edges"), applied by `Program.validate` and obeyed by every mutation.
    """

    inputs: tuple[Input, ...]
    output_types: tuple[ValueType, ...]
    ops: tuple[Op, ...]
    max_nodes: int
    const_types: tuple[ValueType, ...]
    rules: tuple[Rule, ...]

    def __init__(
        self,
        inputs: Sequence[Input],
        output_types: Sequence[str | ValueType],
        ops: Sequence[Op],
        max_nodes: int = 32,
        const_type: str | ValueType | None = None,
        *,
        const_types: Sequence[str | ValueType] = (),
        rules: Iterable[Rule] = (),
    ):
        if const_type is not None and const_types:
            raise ValueError("give const_type (one type) or const_types, not both")
        const_types = (const_type,) if const_type is not None else tuple(const_types)
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("inputs", tuple(inputs))
        set_("output_types", tuple(as_type(t) for t in output_types))
        set_("ops", tuple(ops))
        set_("max_nodes", max_nodes)
        set_("const_types", tuple(as_type(t) for t in const_types))
        set_("rules", tuple(rules))
        set_("_types", self._collect_types())
        set_("_overloads", self._collect_overloads())
        if len({t.name for t in self.const_types}) != len(self.const_types):
            raise ValueError(f"duplicate constant types in {[t.name for t in self.const_types]}")

    def _collect_types(self) -> dict[str, ValueType]:
        """Every type the vocabulary names, by name; one name with two shapes or dtypes is an error."""
        types: dict[str, ValueType] = {}
        uses = (
            [(i.type, f"input {i.name}") for i in self.inputs]
            + [(t, "an output") for t in self.output_types]
            + [(t, "a constant") for t in self.const_types]
            + [(t, f"op {op.name}") for op in self.ops for t in (*op.input_types, op.output_type)]
        )
        for type_, user in uses:
            known = types.setdefault(type_.name, type_)
            if known != type_:
                raise ValueError(
                    f"type {type_.name!r} is {known!r} in one place and {type_!r} in {user}: a type's identity "
                    "is its name, so one name has one shape and one dtype"
                )
        return types

    def _collect_overloads(self) -> dict[str, tuple[Op, ...]]:
        overloads: dict[str, list[Op]] = {}
        for op in self.ops:
            if op.name in (CONST, INPUT):
                raise ValueError(f"'{op.name}' is reserved; set const_types for constants")
            if op.name in COMMUTATIVE_NAMES and op.commutative is False and op.variadic is None and op.arity > 1:
                raise ValueError(
                    f"op {op.name} is declared not commutative, but the canonical hash treats {op.name} as "
                    "commutative in every space: give a non-commutative op another name"
                )
            for other in overloads.get(op.name, []):
                if _overlap(op, other):
                    raise ValueError(
                        f"duplicate op {op.name}: {op.name}{other.signature} and {op.name}{op.signature} accept "
                        "the same arguments, so a node could not tell which it is"
                    )
            overloads.setdefault(op.name, []).append(op)
        return {name: tuple(ops) for name, ops in overloads.items()}

    # ------------------------------------------------------------------ types
    @property
    def types(self) -> Mapping[str, ValueType]:
        """Every type of the vocabulary by name (inputs first, then outputs, constants, ops)."""
        return dict(self._types)

    @property
    def const_type(self) -> str | None:
        """The name of the default constant type (the first of `const_types`), or None."""
        return self.const_types[0].name if self.const_types else None

    def const_type_of(self, type_name: str | None) -> ValueType | None:
        """The type of a constant node that names `type_name` (None: the default), or None if the
        space has no such constant type."""
        if type_name is None:
            return self.const_types[0] if self.const_types else None
        return next((t for t in self.const_types if t.name == type_name), None)

    # ------------------------------------------------------------------ ops
    @property
    def op_names(self) -> tuple[str, ...]:
        """Every op name a node may carry, constants included: the order of the op one-hot encoding.
        Overloads of one name share it."""
        return tuple(self._overloads) + ((CONST,) if self.const_types else ())

    @property
    def op_by_name(self) -> Mapping[str, Op]:
        """The op of each name; for an overloaded name, its first overload (`resolve` finds a node's)."""
        return {name: ops[0] for name, ops in self._overloads.items()}

    def overloads(self, name: str) -> tuple[Op, ...]:
        """Every op of this name (empty if none)."""
        return self._overloads.get(name, ())

    def resolve(self, name: str, arg_types: Sequence[str]) -> Op | None:
        """The op of this name that accepts arguments of these types, or None."""
        return next((op for op in self._overloads.get(name, ()) if op.accepts(arg_types)), None)

    def ops_producing(self, type_: str | ValueType) -> list[Op]:
        name = as_type(type_).name
        return [op for op in self.ops if op.output_type.name == name]

    @property
    def has_variadic(self) -> bool:
        return any(op.variadic for op in self.ops)

    @property
    def has_overloads(self) -> bool:
        return len(self._overloads) < len(self.ops)

    # ------------------------------------------------------------------ rules
    def broken_rule(self, program: "Program") -> str | None:
        """The message of the first validity rule `program` breaks, or None."""
        for rule in self.rules:
            message = rule(program)
            if message is not None:
                return str(message)
        return None


def _overlap(a: Op, b: Op) -> bool:
    """Whether some argument types are accepted by both ops (then a node could not choose)."""
    if a.variadic is None and b.variadic is None:
        return a.input_types == b.input_types
    if a.variadic is not None and b.variadic is not None:
        return a.input_types == b.input_types and a.variadic[0] <= b.variadic[1] and b.variadic[0] <= a.variadic[1]
    fixed, var = (a, b) if a.variadic is None else (b, a)
    return var.accepts([t.name for t in fixed.input_types])


# ---------------------------------------------------------------------------- op functions
# Protected versions keep every value finite on any input, as is usual in genetic programming
# (gplearn uses the same guards): a division by ~0 gives 1, a log of ~0 gives 0.
_EPS = 1e-3


def protected_div(a, b):
    import jax.numpy as jnp

    safe = jnp.abs(b) > _EPS
    return jnp.where(safe, a / jnp.where(safe, b, 1.0), 1.0)


def protected_log(a):
    import jax.numpy as jnp

    absa = jnp.abs(a)
    safe = absa > _EPS
    return jnp.where(safe, jnp.log(jnp.where(safe, absa, 1.0)), 0.0)


def protected_exp(a):
    import jax.numpy as jnp

    return jnp.exp(jnp.minimum(a, 80.0))


def protected_sqrt(a):
    import jax.numpy as jnp

    return jnp.sqrt(jnp.abs(a))


def interpolate(a, b, w):
    """(1 - w) * a + w * b: an exponential moving average when b is the running value."""
    return (1 - w) * a + w * b


def clip(a, b):
    """a clipped to [-|b|, |b|]."""
    import jax.numpy as jnp

    bound = jnp.abs(b)
    return jnp.clip(a, -bound, bound)


def masked_sum(values, mask):
    """The sum of a variadic op's arguments: values [slots, ...], mask bool [slots]."""
    import jax.numpy as jnp

    mask = mask.reshape(mask.shape + (1,) * (values.ndim - 1))
    return jnp.sum(jnp.where(mask, values, 0), axis=0)


def _jax_numpy(name: str) -> Callable:
    """jax.numpy.<name>, looked up when called (this module must not import jax)."""

    def fn(*args):
        import jax.numpy as jnp

        return getattr(jnp, name)(*args)

    fn.__name__ = fn.__qualname__ = name
    return fn


_ELEMENTWISE: dict[str, tuple[int, Callable, bool]] = {
    "add": (2, _jax_numpy("add"), True),
    "sub": (2, _jax_numpy("subtract"), False),
    "mul": (2, _jax_numpy("multiply"), True),
    "div": (2, protected_div, False),
    "min": (2, _jax_numpy("minimum"), True),
    "max": (2, _jax_numpy("maximum"), True),
    "sin": (1, _jax_numpy("sin"), False),
    "cos": (1, _jax_numpy("cos"), False),
    "exp": (1, protected_exp, False),
    "log": (1, protected_log, False),
    "sqrt": (1, protected_sqrt, False),
    "square": (1, _jax_numpy("square"), False),
    "abs": (1, _jax_numpy("abs"), False),
    "sign": (1, _jax_numpy("sign"), False),
    "neg": (1, _jax_numpy("negative"), False),
    "interpolate": (3, interpolate, False),
    "clip": (2, clip, False),
}


def elementwise_ops(names: Sequence[str], type_: str | ValueType) -> tuple[Op, ...]:
    """The standard elementwise ops named, all reading and producing `type_`."""
    unknown = [n for n in names if n not in _ELEMENTWISE]
    if unknown:
        raise ValueError(f"unknown elementwise ops {unknown}; known: {sorted(_ELEMENTWISE)}")
    return tuple(
        Op(n, (type_,) * _ELEMENTWISE[n][0], type_, _ELEMENTWISE[n][1], _ELEMENTWISE[n][2])
        for n in names
    )
