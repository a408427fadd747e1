"""The Nguyen symbolic-regression benchmarks (Uy et al., 2011) and user data from CSV files.

A Problem is a target formula or a table of data; either way it becomes training points (the data the
fitness is computed on) and probe points (extra inputs that make behaviour fingerprints sharper).
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np

from evolve.errors import OptionError


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """A target formula in x1, x2 (sympy syntax) sampled uniformly on [low, high] per variable."""

    formula: str
    n_vars: int
    low: float
    high: float
    n_points: int = 20


NGUYEN = {
    "nguyen-1": Benchmark("x1**3 + x1**2 + x1", 1, -1, 1),
    "nguyen-2": Benchmark("x1**4 + x1**3 + x1**2 + x1", 1, -1, 1),
    "nguyen-3": Benchmark("x1**5 + x1**4 + x1**3 + x1**2 + x1", 1, -1, 1),
    "nguyen-4": Benchmark("x1**6 + x1**5 + x1**4 + x1**3 + x1**2 + x1", 1, -1, 1),
    "nguyen-5": Benchmark("sin(x1**2)*cos(x1) - 1", 1, -1, 1),
    "nguyen-6": Benchmark("sin(x1) + sin(x1 + x1**2)", 1, -1, 1),
    "nguyen-7": Benchmark("log(x1 + 1) + log(x1**2 + 1)", 1, 0, 2),
    "nguyen-8": Benchmark("sqrt(x1)", 1, 0, 4),
    "nguyen-9": Benchmark("sin(x1) + sin(x2**2)", 2, 0, 1),
    "nguyen-10": Benchmark("2*sin(x1)*cos(x2)", 2, 0, 1),
    "nguyen-11": Benchmark("x1**x2", 2, 0, 1),
    "nguyen-12": Benchmark("x1**4 - x1**3 + x2**2/2 - x2", 2, 0, 1),
}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Training data and probe inputs.

    names: the input variables, in program-input order.
    x: float64 [n_vars, n_points] training inputs; y: float64 [n_points] targets.
    probe: float64 [n_vars, n_probe] extra inputs used only for behaviour fingerprints.
    benchmark: the known formula when there is one (enables the exact-recovery check).
    """

    names: tuple[str, ...]
    x: np.ndarray
    y: np.ndarray
    probe: np.ndarray
    benchmark: Benchmark | None = None


def benchmark_dataset(name: str, seed: int = 0) -> Dataset:
    import sympy

    if name not in NGUYEN:
        raise OptionError(f"unknown problem {name!r}; known: {', '.join(NGUYEN)} or a path to a .csv file")
    bench = NGUYEN[name]
    names = tuple(f"x{i + 1}" for i in range(bench.n_vars))
    rng = np.random.default_rng(seed)
    x = rng.uniform(bench.low, bench.high, size=(bench.n_vars, bench.n_points))
    probe = rng.uniform(bench.low, bench.high, size=(bench.n_vars, 12))
    symbols = sympy.symbols(names)
    target = sympy.lambdify(symbols, sympy.sympify(bench.formula), "numpy")
    y = np.broadcast_to(np.asarray(target(*x), np.float64), (bench.n_points,)).copy()
    return Dataset(names, x, y, probe, bench)


def csv_dataset(path: str, target: str | None, seed: int = 0) -> Dataset:
    """Every column but `target` is an input (named by its header); the last column is the target
    when none is named."""
    if not os.path.exists(path):
        raise OptionError(f"no such data file: {path}")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if len(rows) < 3:
        raise OptionError(f"{path}: need a header row and at least two data rows")
    header = [h.strip() for h in rows[0]]
    target = target or header[-1]
    if target not in header:
        raise OptionError(f"{path}: no column {target!r}; columns: {', '.join(header)}")
    for name in header:
        if not name.isidentifier():
            raise OptionError(f"{path}: column name {name!r} must be an identifier (letters, digits, _)")
    try:
        table = np.array([[float(v) for v in row] for row in rows[1:] if row], np.float64)
    except ValueError as e:
        raise OptionError(f"{path}: every value must be a number ({e})") from None
    if table.shape[1] != len(header):
        raise OptionError(f"{path}: rows have {table.shape[1]} values but the header names {len(header)} columns")
    t = header.index(target)
    inputs = [i for i in range(len(header)) if i != t]
    if not inputs:
        raise OptionError(f"{path}: no input columns besides the target {target!r}")
    x = table[:, inputs].T
    rng = np.random.default_rng(seed)
    low, high = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    probe = rng.uniform(low, high, size=(len(inputs), 12))
    return Dataset(tuple(header[i] for i in inputs), x, table[:, t], probe)
