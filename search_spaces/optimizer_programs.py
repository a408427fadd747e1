"""What an optimizer program is: its vocabulary, and SGD, momentum, Adam and Lion written in it.

A program computes, elementwise per parameter, from the inputs

    g (gradient), p (parameter), m, v (the two state slots, zero at the start), t (step count, 1, 2, ...)

three outputs: the update direction u and the new values of m and v. The training loop applies

    p <- p - lr * u

with lr from the space's learning-rate grid, so a program says the direction and the shape of a step,
and the grid says its size (as in optax, where a transformation is scaled by the learning rate).
"""

from __future__ import annotations

import math
from typing import Callable

from evolve.ops import CONST, INPUT, Input, Op, Vocabulary, elementwise_ops
from evolve.program import Node, Program

TENSOR = "tensor"
INPUT_NAMES = ("g", "p", "m", "v", "t")
OUTPUT_NAMES = ("u", "m", "v")
STATE_SLOTS = ("m", "v")
SPACE = "optimizers"

#: Below this |denominator| the division gives 0. Far smaller than the 1e-3 of the genetic-programming
#: guard in evolve.ops, which is on the scale of real gradients and would change Adam's
#: m / (sqrt(v) + 1e-8) whenever a gradient is small.
DIV_EPS = 1e-20


def optimizer_div(a, b):
    """Protected division: a / b, and 0 where |b| <= 1e-20 (no step rather than an infinite one)."""
    import jax.numpy as jnp  # here, not at the top: the grammar imports no JAX, only programs that run do

    safe = jnp.abs(b) > DIV_EPS
    return jnp.where(safe, a / jnp.where(safe, b, 1.0), 0.0)


ELEMENTWISE = ("add", "sub", "mul", "sqrt", "square", "sign", "abs", "exp", "log", "min", "max", "interpolate", "clip")


def vocabulary(max_nodes: int = 40) -> Vocabulary:
    ops = elementwise_ops(ELEMENTWISE, TENSOR) + (Op("div", (TENSOR, TENSOR), TENSOR, optimizer_div),)
    return Vocabulary(
        inputs=tuple(Input(name, TENSOR) for name in INPUT_NAMES),
        output_types=(TENSOR,) * len(OUTPUT_NAMES),
        ops=ops,
        max_nodes=max_nodes,
        const_type=TENSOR,
    )


class _Builder:
    """Writes a program as nested calls: `b.op("add", b.g, b.const(1.0))` returns the new node's index."""

    def __init__(self):
        self.nodes = [Node(INPUT) for _ in INPUT_NAMES]
        self.g, self.p, self.m, self.v, self.t = range(len(INPUT_NAMES))

    def const(self, value: float) -> int:
        self.nodes.append(Node(CONST, (), float(value)))
        return len(self.nodes) - 1

    def op(self, name: str, *args: int) -> int:
        self.nodes.append(Node(name, tuple(args)))
        return len(self.nodes) - 1

    def program(self, u: int, m: int, v: int) -> Program:
        return Program(tuple(self.nodes), (u, m, v), SPACE).pruned()


def sgd() -> Program:
    """u = g (optax.sgd(lr))."""
    b = _Builder()
    return b.program(b.g, b.m, b.v)


def momentum(decay: float = 0.9) -> Program:
    """m = g + decay*m; u = m (optax.sgd(lr, momentum=decay))."""
    b = _Builder()
    m = b.op("add", b.g, b.op("mul", b.const(decay), b.m))
    return b.program(m, m, b.v)


def adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Program:
    """Bias-corrected moments, u = m_hat / (sqrt(v_hat) + eps) (optax.adam(lr)).

    b**t is written exp(t * log b), which needs no power op."""
    b = _Builder()
    m = b.op("interpolate", b.g, b.m, b.const(b1))
    v = b.op("interpolate", b.op("square", b.g), b.v, b.const(b2))
    one = b.const(1.0)

    def corrected(moment: int, decay: float) -> int:
        power = b.op("exp", b.op("mul", b.t, b.const(math.log(decay))))
        return b.op("div", moment, b.op("sub", one, power))

    u = b.op("div", corrected(m, b1), b.op("add", b.op("sqrt", corrected(v, b2)), b.const(eps)))
    return b.program(u, m, v)


def lion(b1: float = 0.9, b2: float = 0.99, weight_decay: float = 1e-3) -> Program:
    """u = sign(interp(g, m, b1)) + wd*p; m = interp(g, m, b2) (optax.lion(lr))."""
    b = _Builder()
    direction = b.op("sign", b.op("interpolate", b.g, b.m, b.const(b1)))
    u = b.op("add", direction, b.op("mul", b.const(weight_decay), b.p))
    m = b.op("interpolate", b.g, b.m, b.const(b2))
    return b.program(u, m, b.v)


def read_inputs(program: Program) -> set[int]:
    """The input nodes (0 = g, 1 = p, ...) that some output depends on."""
    program = program.pruned()
    live = set()
    stack = list(program.outputs)
    while stack:
        i = stack.pop()
        if i not in live:
            live.add(i)
            stack.extend(program.nodes[i].inputs)
    return {i for i in live if program.nodes[i].op == INPUT}


SEEDS: dict[str, Callable[[], Program]] = {"sgd": sgd, "momentum": momentum, "adam": adam, "lion": lion}
