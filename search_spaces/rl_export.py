"""RL loss programs as text for people: one readable formula, and a self-contained JAX module.

`formula(program)` writes the loss the way papers do, DQN as

    0.5·(Q(s,a) - (r + γ·max Q_targ(s',·)))²

with s, a, r, γ, s' the transition (s_tm1, a_tm1, r_t, discount_t, s_t), Q the online and Q_targ
the target network, `·` an action axis left free; a value read twice is written twice.

`to_source(program)` writes a Python module that imports only jax and defines, in the rlax calling
convention (batched; B transitions, A actions):

    per_sample_loss(q_tm1, a_tm1, r_t, discount_t, q_t, *, <extras>) -> [B] float32
    loss(...same arguments...) -> the mean over the batch (what the search trained with)

    q_tm1 [B, A]   Q(s_tm1, ·), the online network          a_tm1 [B] int     r_t [B]
    discount_t [B] environment discount x gamma              q_t [B, A]        Q_targ(s_t, ·), the target network

and keyword-only extras, in this order, only those the program reads:

    q_t_selector [B, A]   Q(s_t, ·), the online network at the next state (rlax's double-Q name)
    q_tm1_target [B, A]   Q_targ(s_tm1, ·)
    s_tm1, s_t [B, obs]   the states, for ops on states
    q_fn, q_targ_fn       callables state [B, obs] -> [B, A], for a network applied to a state the
                          program computed (e.g. Q(|s|, ·))

Nothing is stop-gradient-ed: compute q_tm1 and q_t_selector (and call q_fn) with the online
parameters inside the function you differentiate, q_t and q_tm1_target with the target
parameters, and the gradient is the search's. Each op is the very function the interpreter runs
(its source copied from rl_ops), so the exported loss computes what the search evaluated.

Plain text: this module imports no JAX.
"""

from __future__ import annotations

import inspect
import re

from evolve.ops import INPUT, Vocabulary
from evolve.program import Program

from evolve.search_spaces import rl_ops
from evolve.search_spaces.rl_ops import (
    ACTION_IN, CONSTANT_IN, DISCOUNT, Q_PARAM, Q_TARG_PARAM, REWARD, S_T, S_TM1,
)

# ---------------------------------------------------------------------------- the formula
# precedence: 1 sums, 2 products, 3 prefix reductions and powers, 4 atoms
_SUM, _PRODUCT, _PREFIX, _ATOM = 1, 2, 3, 4
_SYMBOLS = {ACTION_IN: "a", S_TM1: "s", S_T: "s'", REWARD: "r", DISCOUNT: "γ", CONSTANT_IN: "c"}
_NETWORKS = {Q_PARAM: "Q", Q_TARG_PARAM: "Q_targ"}
_CALLS = {  # ops written as f(x, ...)
    "softmax": "softmax", "entropy": "negentropy", "std_list": "std", "mean_batch": "mean_batch",
    "std_batch": "std_batch", "exp": "exp",
}
_REDUCTIONS = {"max_list": "max", "sum_list": "sum", "mean_list": "mean", "argmax": "argmax"}


def formula(program: Program, vocab: Vocabulary) -> str:
    """The loss as one formula (module docstring). A sum or product read more than once is named
    (h1, h2, ...) and defined after the formula: `..., where h1 = r + γ·max Q_targ(s',·)`."""
    program = program.pruned()
    types = program.node_types(vocab)
    readers = [0] * len(program.nodes)
    for node in program.nodes:
        for j in set(node.inputs):
            readers[j] += 1
    exprs: dict[int, tuple[str, int]] = {}
    named: list[str] = []
    for i, node in enumerate(program.nodes):
        if node.op == INPUT:
            exprs[i] = (_SYMBOLS.get(i, _NETWORKS.get(i, f"x{i}")), _ATOM)
            continue
        args = [exprs[j] for j in node.inputs]
        exprs[i] = _render(node.op, args, [types[j] for j in node.inputs], node.inputs)
        if readers[i] > 1 and exprs[i][1] <= _PRODUCT and i not in program.outputs:
            name = f"h{len(named) + 1}"
            named.append(f"{name} = {exprs[i][0]}")
            exprs[i] = (name, _ATOM)
    where = f", where {', '.join(named)}" if named else ""
    return exprs[program.outputs[0]][0] + where


def _wrap(expr: tuple[str, int], least: int) -> str:
    text, prec = expr
    return text if prec >= least else f"({text})"


def _render(op: str, args: list[tuple[str, int]], arg_types: list[str], inputs: tuple[int, ...]) -> tuple[str, int]:
    if op == "q_values":
        network = _NETWORKS.get(inputs[0], args[0][0])
        return f"{network}({args[1][0]},·)", _ATOM
    if op == "select":
        q, prec = args[0]
        if prec == _ATOM and q.endswith(",·)"):
            return f"{q[:-2]}{args[1][0]})", _ATOM
        return f"{_wrap(args[0], _ATOM)}[{args[1][0]}]", _ATOM
    if op in _REDUCTIONS:
        return f"{_REDUCTIONS[op]} {_wrap(args[0], _ATOM)}", _PREFIX
    if op in _CALLS:
        return f"{_CALLS[op]}({', '.join(a[0] for a in args)})", _ATOM
    if op in ("max", "min", "max_float"):
        return f"{op[:3]}({args[0][0]}, {args[1][0]})", _ATOM
    if op == "kl_div":
        return f"KL({args[0][0]} ‖ {args[1][0]})", _ATOM
    if op.startswith("const_"):
        return op[len("const_"):], _ATOM
    if op == "add":
        return f"{_wrap(args[0], _SUM)} + {_wrap(args[1], _SUM)}", _SUM
    if op == "sub":
        return f"{_wrap(args[0], _SUM)} - {_wrap(args[1], _PRODUCT)}", _SUM
    if op == "mul" or op == "dot" and arg_types[0] != "state":
        return f"{_wrap(args[0], _PRODUCT)}·{_wrap(args[1], _PREFIX)}", _PRODUCT
    if op == "dot":
        return f"⟨{args[0][0]}, {args[1][0]}⟩", _ATOM
    if op == "div":
        return f"{_wrap(args[0], _PRODUCT)} / {_wrap(args[1], _PREFIX)}", _PRODUCT
    if op == "mul_tenth":
        return f"0.1·{_wrap(args[0], _PREFIX)}", _PRODUCT
    if op == "l2_distance":
        difference = f"{_wrap(args[0], _SUM)} - {_wrap(args[1], _PRODUCT)}"
        return (f"0.5·({difference})²" if arg_types[0] != "state" else f"0.5·‖{difference}‖²"), _PRODUCT
    if op == "l2_norm":
        return (f"{_wrap(args[0], _ATOM)}²" if arg_types[0] != "state" else f"‖{args[0][0]}‖²"), _PREFIX
    if op == "abs":
        return f"|{args[0][0]}|", _ATOM
    if op == "log":
        return f"log|{args[0][0]}|", _ATOM
    return f"{op}({', '.join(a[0] for a in args)})", _ATOM


def text(program: Program, vocab: Vocabulary) -> str:
    """The `text` export: the formula, then the program's live nodes one a line."""
    program = program.pruned()
    types = program.node_types(vocab)
    lines = [f"loss = {formula(program, vocab)}", ""]
    names = rl_ops.INPUT_NAMES
    for i, node in enumerate(program.nodes):
        if node.op != INPUT:
            args = ", ".join(names[j] if j < len(names) else f"n{j}" for j in node.inputs)
            lines.append(f"n{i}: {types[i]} = {node.op}({args})")
    lines.append(f"output: n{program.outputs[0]}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- JAX source
_ARGUMENTS = ("q_tm1", "a_tm1", "r_t", "discount_t", "q_t")
_EXTRAS = ("q_t_selector", "q_tm1_target", "s_tm1", "s_t", "q_fn", "q_targ_fn")
_KNOWN_Q = {(Q_PARAM, S_TM1): "q_tm1", (Q_TARG_PARAM, S_T): "q_t", (Q_PARAM, S_T): "q_t_selector", (Q_TARG_PARAM, S_TM1): "q_tm1_target"}
_INPUT_VALUES = {ACTION_IN: "a_tm1", S_TM1: "s_tm1", S_T: "s_t", REWARD: "r_t", DISCOUNT: "discount_t", CONSTANT_IN: "jnp.zeros_like(r_t)"}
_HELPERS = {name for name, value in vars(rl_ops).items() if inspect.isfunction(value) and value.__module__ == rl_ops.__name__}


def to_source(program: Program, vocab: Vocabulary) -> str:
    """A self-contained Python module with the program's loss (module docstring)."""
    program = program.pruned()
    _, ops = program.node_types_and_ops(vocab)
    used: set[str] = set()
    body: list[str] = []
    names: dict[int, str] = {}
    for i, (node, op) in enumerate(zip(program.nodes, ops)):
        if node.op == INPUT:
            continue
        if node.op == "q_values":
            network, state = node.inputs
            known = _KNOWN_Q.get((network, state))
            if known is not None:
                names[i] = known
                used.add(known)
                continue
            fn = "q_fn" if network == Q_PARAM else "q_targ_fn"
            used.add(fn)
            call = f"{fn}({_value(state, names, used)})"
        elif node.op.startswith("const_"):
            call = f"jnp.full_like(r_t, {float(node.op[len('const_'):])!r})"
        else:
            call = f"{op.fn.__name__}({', '.join(_value(j, names, used) for j in node.inputs)})"
            used.add(op.fn.__name__)
        names[i] = f"n{i}"
        body.append(f"    n{i} = {call}")
    result = _value(program.outputs[0], names, used)
    extras = [name for name in _EXTRAS if name in used]
    signature = ", ".join(_ARGUMENTS) + (", *, " + ", ".join(extras) if extras else "")
    call_args = ", ".join(_ARGUMENTS) + "".join(f", {name}={name}" for name in extras)
    return "\n".join([
        f'"""A loss found by evolve (space rl-losses): {formula(program, vocab)}',
        "",
        "Batched, in the rlax calling convention; see evolve's search_spaces/rl_export.py for every argument.",
        '"""',
        "",
        "import jax",
        "import jax.numpy as jnp",
        "",
        "",
        *_helper_sources(used),
        "",
        f"def per_sample_loss({signature}):",
        '    """The loss of each transition, [B]."""',
        *body,
        f"    return jnp.broadcast_to({result}, r_t.shape).astype(jnp.float32)",
        "",
        "",
        f"def loss({signature}):",
        '    """The mean loss over the batch: what the search minimized."""',
        f"    return jnp.mean(per_sample_loss({call_args}))",
        "",
    ])


def _value(j: int, names: dict[int, str], used: set[str]) -> str:
    """The expression for node j's value in the exported body."""
    if j in names:
        return names[j]
    value = _INPUT_VALUES[j]
    if value in _EXTRAS:
        used.add(value)
    return value


def _helper_sources(used: set[str]) -> list[str]:
    """The source of every rl_ops function the body calls, and of those they call."""
    todo = sorted(used & _HELPERS)
    done: list[str] = []
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.append(name)
        source = inspect.getsource(getattr(rl_ops, name))
        todo += [other for other in _HELPERS - set(done) if re.search(rf"(?<![\w.]){other}\(", source)]
    return [inspect.getsource(getattr(rl_ops, name)) + "\n" for name in sorted(done)]
