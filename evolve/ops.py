"""Op specs: the vocabulary a search space's programs are written in.

An op is data (name, input types, output type, commutative?) plus the jax function that computes it
elementwise. Every value in a program has one array shape per evaluation, so the interpreter can keep
all node values in one buffer; types only constrain which node may read which.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import jax.numpy as jnp

INPUT = "input"  # node kind of a program's inputs (the first nodes)
CONST = "const"  # op name of a constant node; its value lives on the node


@dataclasses.dataclass(frozen=True)
class Op:
    """One operation. `fn(*args)` maps input arrays to an output array of the same shape."""

    name: str
    input_types: tuple[str, ...]
    output_type: str
    fn: Callable[..., jnp.ndarray] | None = None
    commutative: bool = False

    @property
    def arity(self) -> int:
        return len(self.input_types)


@dataclasses.dataclass(frozen=True)
class Input:
    """A named, typed program input (e.g. `x1: real`, `grad: tensor`)."""

    name: str
    type: str


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """What programs of one space may contain: their inputs, output types, ops and size limit.

    `const_type` is the type of constant nodes, or None when the space has no constants.
    """

    inputs: tuple[Input, ...]
    output_types: tuple[str, ...]
    ops: tuple[Op, ...]
    max_nodes: int = 32
    const_type: str | None = None

    def __post_init__(self):
        names = [op.name for op in self.ops]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate op names in {names}")
        if CONST in names:
            raise ValueError(f"'{CONST}' is reserved; set const_type instead")

    @property
    def op_by_name(self) -> Mapping[str, Op]:
        return {op.name: op for op in self.ops}

    @property
    def op_names(self) -> tuple[str, ...]:
        """Every op a node may name, constants included: the order of the op one-hot encoding."""
        return tuple(op.name for op in self.ops) + ((CONST,) if self.const_type else ())

    def ops_producing(self, type_: str) -> list[Op]:
        return [op for op in self.ops if op.output_type == type_]


# Protected versions keep every value finite on any input, as is usual in genetic programming
# (gplearn uses the same guards): a division by ~0 gives 1, a log of ~0 gives 0.
_EPS = 1e-3


def protected_div(a, b):
    safe = jnp.abs(b) > _EPS
    return jnp.where(safe, a / jnp.where(safe, b, 1.0), 1.0)


def protected_log(a):
    absa = jnp.abs(a)
    safe = absa > _EPS
    return jnp.where(safe, jnp.log(jnp.where(safe, absa, 1.0)), 0.0)


def protected_exp(a):
    return jnp.exp(jnp.minimum(a, 80.0))


def protected_sqrt(a):
    return jnp.sqrt(jnp.abs(a))


def interpolate(a, b, w):
    """(1 - w) * a + w * b: an exponential moving average when b is the running value."""
    return (1 - w) * a + w * b


def clip(a, b):
    """a clipped to [-|b|, |b|]."""
    bound = jnp.abs(b)
    return jnp.clip(a, -bound, bound)


_ELEMENTWISE: dict[str, tuple[int, Callable, bool]] = {
    "add": (2, jnp.add, True),
    "sub": (2, jnp.subtract, False),
    "mul": (2, jnp.multiply, True),
    "div": (2, protected_div, False),
    "min": (2, jnp.minimum, True),
    "max": (2, jnp.maximum, True),
    "sin": (1, jnp.sin, False),
    "cos": (1, jnp.cos, False),
    "exp": (1, protected_exp, False),
    "log": (1, protected_log, False),
    "sqrt": (1, protected_sqrt, False),
    "square": (1, jnp.square, False),
    "abs": (1, jnp.abs, False),
    "sign": (1, jnp.sign, False),
    "neg": (1, jnp.negative, False),
    "interpolate": (3, interpolate, False),
    "clip": (2, clip, False),
}


def elementwise_ops(names: Sequence[str], type_: str) -> tuple[Op, ...]:
    """The standard elementwise ops named, all reading and producing `type_`."""
    unknown = [n for n in names if n not in _ELEMENTWISE]
    if unknown:
        raise ValueError(f"unknown elementwise ops {unknown}; known: {sorted(_ELEMENTWISE)}")
    return tuple(
        Op(n, (type_,) * _ELEMENTWISE[n][0], type_, _ELEMENTWISE[n][1], _ELEMENTWISE[n][2])
        for n in names
    )
