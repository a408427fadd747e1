"""Optimizer programs as text for people: a readable update rule, and standalone Python source that
defines an optax optimizer (the live `optax.GradientTransformation` is optimizer_optax's).

Both follow the space's convention: the program gives the direction u and the new state (m, v);
optax's update is -learning_rate * u, so `optax.apply_updates` does p <- p - lr * u, exactly as the
search's training loop does. Plain text: this module imports no JAX (`evolve export` needs none).
"""

from __future__ import annotations

from evolve.ops import CONST, INPUT, Vocabulary
from evolve.program import Program
from evolve.search_spaces.optimizer_programs import INPUT_NAMES, STATE_SLOTS, read_inputs

# --------------------------------------------------------------------------- readable rule
_INFIX = {"add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0}*{1}", "div": "{0} / {1}"}


def update_rule_text(program: Program) -> str:
    """The rule on one line, e.g. `m' = interpolate(g, m, 0.9); u = sign(m')`.

    Nodes read more than once are named (h1, h2, ...), new state values are m' and v'; passthrough
    state (m' = m) is left out."""
    program = program.pruned()
    readers = [0] * len(program.nodes)
    for node in program.nodes:
        for j in node.inputs:
            readers[j] += 1
    names = dict(enumerate(INPUT_NAMES))
    for slot, o in zip(STATE_SLOTS, program.outputs[1:]):
        names.setdefault(o, f"{slot}'")
    lines: list[str] = []
    exprs: dict[int, tuple[str, bool]] = {}  # node -> (text, needs parentheses inside an infix op)
    for i, node in enumerate(program.nodes):
        if node.op == INPUT:
            exprs[i] = (names[i], False)
            continue
        if node.op == CONST:
            exprs[i] = (f"{node.value:.4g}", node.value < 0)
            continue
        args = [f"({text})" if infix and node.op in _INFIX else text for text, infix in (exprs[j] for j in node.inputs)]
        text = _INFIX[node.op].format(*args) if node.op in _INFIX else f"{node.op}({', '.join(args)})"
        if i not in names and readers[i] > 1:
            names[i] = f"h{sum(1 for n in names.values() if n.startswith('h')) + 1}"
        if i in names:
            lines.append(f"{names[i]} = {text}")
            exprs[i] = (names[i], False)
        else:
            exprs[i] = (text, node.op in _INFIX)
    for slot, o in zip(STATE_SLOTS, program.outputs[1:]):
        if exprs[o][0] not in (slot, f"{slot}'"):  # a slot set to another input, or to another slot's value
            lines.append(f"{slot}' = {exprs[o][0]}")
    lines.append(f"u = {exprs[program.outputs[0]][0]}")
    return "; ".join(lines)


def to_optax(program: Program, vocab: Vocabulary, learning_rate: float):
    """The live `optax.GradientTransformation` (optimizer_optax.to_optax, the documented name kept
    here; JAX and optax are imported on this call, not with this module)."""
    from evolve.search_spaces import optimizer_optax

    return optimizer_optax.to_optax(program, vocab, learning_rate)


# --------------------------------------------------------------------------- Python source
_CALLS = {
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "_div({0}, {1})",
    "min": "jnp.minimum({0}, {1})",
    "max": "jnp.maximum({0}, {1})",
    "sqrt": "jnp.sqrt(jnp.abs({0}))",
    "square": "jnp.square({0})",
    "sign": "jnp.sign({0})",
    "abs": "jnp.abs({0})",
    "exp": "jnp.exp(jnp.minimum({0}, 80.0))",
    "log": "_log({0})",
    "interpolate": "(1 - {2}) * {0} + {2} * {1}",
    "clip": "jnp.clip({0}, -jnp.abs({1}), jnp.abs({1}))",
}

_HELPERS = {
    "div": '''def _div(a, b):
    """Protected division: 0 where |b| <= 1e-20."""
    safe = jnp.abs(b) > 1e-20
    return jnp.where(safe, a / jnp.where(safe, b, 1.0), 0.0)
''',
    "log": '''def _log(a):
    """Protected log: log|a|, and 0 where |a| <= 1e-3."""
    safe = jnp.abs(a) > 1e-3
    return jnp.where(safe, jnp.log(jnp.where(safe, jnp.abs(a), 1.0)), 0.0)
''',
}

_OPTAX_TEMPLATE = '''

class State(NamedTuple):
    count: jax.Array
    m: optax.Params
    v: optax.Params


def optimizer(learning_rate: float) -> optax.GradientTransformation:
    """The update rule as an optax optimizer: updates are -learning_rate * u."""

    def init(params):
        return State(jnp.zeros([], jnp.int32), optax.tree.zeros_like(params), optax.tree.zeros_like(params))

    def update(grads, state, params=None):
        {params_check}count = state.count + 1
        t = count.astype(jnp.float32)
        out = jax.tree.map(lambda g, p, m, v: update_rule(g, p, m, v, t), grads, {params_arg}, state.m, state.v)
        pick = lambda k: jax.tree.map(lambda _, o: o[k], grads, out)
        return jax.tree.map(lambda u: -learning_rate * u, pick(0)), State(count, pick(1), pick(2))

    return optax.GradientTransformation(init, update)
'''


def to_source(program: Program) -> str:
    """Standalone Python source: `update_rule(g, p, m, v, t)` and `optimizer(learning_rate)`."""
    program = program.pruned()
    used = {n.op for n in program.nodes}
    lines = [
        f'"""An optimizer found by evolve.\n\n{update_rule_text(program)}\n"""',
        "from typing import NamedTuple", "", "import jax", "import jax.numpy as jnp", "import optax", "", "",
    ]
    lines += [_HELPERS[op] + "\n" for op in sorted(used & _HELPERS.keys())]
    lines.append("def update_rule(g, p, m, v, t):")
    lines.append('    """One elementwise step: the direction u and the new state (m, v)."""')
    var = dict(enumerate(INPUT_NAMES))
    for i, node in enumerate(program.nodes):
        if node.op == INPUT:
            continue
        var[i] = f"x{i}"
        expr = f"jnp.float32({node.value!r})" if node.op == CONST else _CALLS[node.op].format(*(var[j] for j in node.inputs))
        lines.append(f"    x{i} = {expr}")
    outs = ", ".join(f"jnp.broadcast_to({var[o]}, g.shape).astype(g.dtype)" for o in program.outputs)
    lines.append(f"    return {outs}")
    reads_params = INPUT_NAMES.index("p") in read_inputs(program)
    check = 'if params is None:\n            raise ValueError("this optimizer reads the parameters: pass params to update()")\n        ' if reads_params else ""
    source = "\n".join(lines) + "\n" + _OPTAX_TEMPLATE.format(params_check=check, params_arg="params" if reads_params else "grads")
    return source
