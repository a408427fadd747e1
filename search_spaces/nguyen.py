"""The Nguyen symbolic-regression benchmarks (Uy et al., 2011) and user data from CSV files.

A Problem is a target formula or a table of data; either way it becomes training points (the data the
fitness is computed on) and probe points (extra inputs that make behaviour fingerprints sharper).
"""

from __future__ import annotations

import csv
import dataclasses
import math
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
        raise OptionError(f"unknown problem {name!r}; known: {', '.join(NGUYEN)} or a CSV file's path")
    bench = NGUYEN[name]
    names = tuple(f"x{i + 1}" for i in range(bench.n_vars))
    rng = np.random.default_rng(seed)
    x = rng.uniform(bench.low, bench.high, size=(bench.n_vars, bench.n_points))
    probe = rng.uniform(bench.low, bench.high, size=(bench.n_vars, 12))
    symbols = sympy.symbols(names)
    target = sympy.lambdify(symbols, sympy.sympify(bench.formula), "numpy")
    y = np.broadcast_to(np.asarray(target(*x), np.float64), (bench.n_points,)).copy()
    return Dataset(names, x, y, probe, bench)


#: Programs compute in float32: data beyond its range cannot be fitted (an input becomes infinite).
FLOAT32_MAX = float(np.finfo(np.float32).max)
#: Delimiters a data file may use (a spreadsheet saved as CSV in many locales writes ';').
DELIMITERS = ",;\t|"


def csv_dataset(path: str, target: str | None, seed: int = 0) -> Dataset:
    """The data in a CSV file (any extension; ',', ';', tab or '|' between values; a UTF-8 byte
    order mark, as Excel writes it, is skipped): every column but `target` is an input, named by its
    header; the last column is the target when none is named."""
    columns, rows = read_csv(path)
    return table_dataset(columns, rows, target, seed, source=path)


def read_csv(path: str) -> tuple[list[str], list[list[float]]]:
    """The header and the rows of numbers of a CSV file; OptionError naming the file and what is wrong."""
    if not os.path.exists(path):
        raise OptionError(f"no such data file: {path}")
    if os.path.isdir(path):
        raise OptionError(f"{path} is a directory; --problem takes a CSV file or a benchmark name")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise OptionError(f"{path}: not UTF-8 text (byte at offset {e.start}); save the data as CSV (UTF-8)") from None
    except OSError as e:
        raise OptionError(f"cannot read {path}: {e.strerror or e}") from None
    lines = text.splitlines()
    header_line = lines[0] if lines else ""
    delimiter = max(DELIMITERS, key=header_line.count) if any(d in header_line for d in DELIMITERS) else ","
    rows = [row for row in csv.reader(lines, delimiter=delimiter) if any(cell.strip() for cell in row)]
    if len(rows) < 3:
        raise OptionError(f"{path}: need a header row and at least two data rows")
    header = [h.strip() for h in rows[0]]
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise OptionError(f"{path}: row {line} has {len(row)} values but the header names {len(header)} columns")
        try:
            values.append([float(v) for v in row])
        except ValueError as e:
            comma = " (decimal commas are not read: write 1.5, not 1,5)" if any("," in v for v in row) else ""
            raise OptionError(f"{path}: row {line}: every value must be a number ({e}){comma}") from None
    return header, values


def table_dataset(columns: list[str], rows: list[list[float]], target: str | None, seed: int = 0,
                  source: str = "the data") -> Dataset:
    """A Dataset from a table (a header and rows of numbers): the names must be distinct
    identifiers, the values finite and within float32's range (programs compute in float32)."""
    if not isinstance(columns, list) or not columns:
        raise OptionError(f"{source}: the columns must be a list of names")
    for name in columns:
        if not isinstance(name, str) or not name.isidentifier():
            raise OptionError(f"{source}: column name {name!r} must be an identifier (letters, digits, _)")
    repeated = sorted({name for name in columns if columns.count(name) > 1})
    if repeated:
        raise OptionError(f"{source}: column {repeated[0]!r} appears {columns.count(repeated[0])} times; column names must differ")
    target = target or columns[-1]
    if target not in columns:
        raise OptionError(f"{source}: no column {target!r}; columns: {', '.join(columns)}")
    numbers = isinstance(rows, list) and all(
        isinstance(row, list) and len(row) == len(columns)
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in row) for row in rows)
    if not numbers or len(rows) < 2:
        raise OptionError(f"{source}: need at least two rows of {len(columns)} numbers, one per column")
    table = np.array([[_as_float(v) for v in row] for row in rows], np.float64)
    bad = ~np.isfinite(table) | (np.abs(table) > FLOAT32_MAX)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        raise OptionError(
            f"{source}: row {row + 2}, column {columns[col]!r} is {float(table[row, col]):g}; every value must be a finite"
            f" number within float32's range (|x| <= {FLOAT32_MAX:.3g}): remove or rescale it"
        )
    t = columns.index(target)
    inputs = [i for i in range(len(columns)) if i != t]
    if not inputs:
        raise OptionError(f"{source}: no input columns besides the target {target!r}")
    x = table[:, inputs].T
    rng = np.random.default_rng(seed)
    low, high = x.min(axis=1, keepdims=True), x.max(axis=1, keepdims=True)
    probe = rng.uniform(low, high, size=(len(inputs), 12))
    return Dataset(tuple(columns[i] for i in inputs), x, table[:, t], probe)


def _as_float(value: int | float) -> float:
    """A number as a float; an integer too large for one becomes infinite (and is then refused)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf
