"""Symbolic-regression programs as formulas: sympy, LaTeX and Python source, and the exact-recovery
check (does the program simplify to the target formula?)."""

from __future__ import annotations

import numpy as np
import sympy

from evolve.ops import CONST, INPUT
from evolve.program import Program

_SYMPY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "sin": sympy.sin,
    "cos": sympy.cos,
    "exp": sympy.exp,
    "log": lambda a: sympy.log(sympy.Abs(a)),  # the protected log reads |a|
}

# Python source for each op, with the same protection the interpreter applies.
_PYTHON = {
    "add": "{0} + {1}",
    "sub": "{0} - {1}",
    "mul": "{0} * {1}",
    "div": "_pdiv({0}, {1})",
    "sin": "np.sin({0})",
    "cos": "np.cos({0})",
    "exp": "np.exp(np.minimum({0}, 80.0))",
    "log": "_plog({0})",
}

_PYTHON_HELPERS = '''import numpy as np


def _pdiv(a, b):
    """Protected division: 1 where |b| <= 1e-3."""
    safe = np.abs(b) > 1e-3
    return np.where(safe, a / np.where(safe, b, 1.0), 1.0)


def _plog(a):
    """Protected log: log|a|, and 0 where |a| <= 1e-3."""
    safe = np.abs(a) > 1e-3
    return np.where(safe, np.log(np.where(safe, np.abs(a), 1.0)), 0.0)
'''


def symbols(names, nonnegative: bool = False) -> list[sympy.Symbol]:
    return [sympy.Symbol(n, nonnegative=True) if nonnegative else sympy.Symbol(n, real=True) for n in names]


def to_sympy(program: Program, syms) -> sympy.Expr:
    """The program's (first) output as a sympy expression (protection guards left out, except |.| in log)."""
    values: list[sympy.Expr] = []
    for i, node in enumerate(program.nodes):
        if node.op == INPUT:
            values.append(syms[i])
        elif node.op == CONST:
            values.append(sympy.Float(node.value))
        else:
            values.append(_SYMPY[node.op](*(values[j] for j in node.inputs)))
    return values[program.outputs[0]]


def to_python(program: Program, names, function_name: str = "program") -> str:
    """Standalone NumPy source computing exactly what the interpreter computes."""
    program = program.pruned()
    lines = [_PYTHON_HELPERS, "", f"def {function_name}({', '.join(names)}):"]
    formula = sympy.sstr(to_sympy(program, symbols(names)))
    lines.append(f'    """{formula}"""')
    var = {i: names[i] for i in range(len(names))}
    for i, node in enumerate(program.nodes):
        if node.op == INPUT:
            continue
        var[i] = f"_v{i}"  # inputs are never named with a leading _ (symbolic_regression refuses it)
        expr = repr(node.value) if node.op == CONST else _PYTHON[node.op].format(*(var[j] for j in node.inputs))
        lines.append(f"    {var[i]} = {expr}")
    lines.append(f"    return {var[program.outputs[0]]}")
    return "\n".join(lines) + "\n"


def recovers(program: Program, formula: str, names, low: float, high: float, seed: int = 0) -> str | None:
    """How the program was shown equal to `formula` on [low, high]^n: "symbolic" (sympy simplifies the
    difference to 0), "numeric" (the two agree to 1e-6 on a dense grid but sympy cannot confirm it),
    or None when they differ.

    The formula is read without the protection guards (so exp(log(x) * x/(x+x)) is sqrt(x), as the
    field counts it), except where that reading is undefined, as in x/(x-x), which sympy makes zoo,
    or sin(1/(x-x)), an AccumBounds: then the grid check runs the program's own protected semantics."""
    syms = symbols(names, nonnegative=low >= 0)
    target = sympy.sympify(formula, locals=dict(zip(names, syms)))
    expr = to_sympy(program.pruned(), syms)
    function = _lambdify_defined(syms, expr)
    defined = function is not None
    function = function or as_numpy_function(program, names)
    # Dense-grid check first: cheap, and it rules out almost every impostor before sympy is asked.
    rng = np.random.default_rng(seed)
    grid = rng.uniform(low, high, size=(len(names), 2000))
    with np.errstate(all="ignore"):
        got = np.broadcast_to(np.asarray(function(*grid), np.float64), grid.shape[1:])
        want = np.broadcast_to(np.asarray(sympy.lambdify(syms, target, "numpy")(*grid), np.float64), grid.shape[1:])
        ok = np.isfinite(want)
        if not np.all(np.abs(got[ok] - want[ok]) <= 1e-6 * (1 + np.abs(want[ok]))):
            return None
    if defined and sympy.count_ops(expr) <= 80:
        try:
            if sympy.simplify(expr - target) == 0:
                return "symbolic"
        except Exception:  # sympy gives up in many ways; the numeric check stands
            pass
    return "numeric"


def _lambdify_defined(syms, expr: sympy.Expr):
    """`expr` as a NumPy function, or None where sympy's reading of it is undefined."""
    if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo, sympy.AccumBounds):
        return None
    try:
        return sympy.lambdify(syms, expr, "numpy")
    except Exception:  # a sympy object NumPy cannot print: no mathematical reading to check
        return None


def as_numpy_function(program: Program, names):
    """The program as a NumPy function, built from `to_python`'s source (our own generated code)."""
    namespace: dict = {}
    exec(compile(to_python(program, names), "<program>", "exec"), namespace)
    return namespace["program"]
