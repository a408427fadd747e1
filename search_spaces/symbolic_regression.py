"""Symbolic regression: find a formula that fits data (the Nguyen benchmarks, or a user's CSV).

Operators {+, -, *, protected /, sin, cos, protected exp, protected log}; fitness 1/(1 + NRMSE) where
NRMSE is the RMSE divided by the target's standard deviation. On a benchmark, `solved` means exact
recovery: the program equals the target formula (see expressions.recovers). Batches are evaluated by
one compiled, vmapped interpreter: no compilation per candidate.

The grammar (SymbolicRegression) holds the data, which is small, and runs programs on it for
fingerprints; the evaluator turns the same outputs into fitness. JAX and sympy are imported only when
programs are first run or printed, so listing plugins or runs never pays for them.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import keyword
import os
from typing import Any, Sequence

import numpy as np

from evolve import hookimpl
from evolve.errors import OptionError
from evolve.ops import Input, Vocabulary, elementwise_ops
from evolve.program import Program
from evolve.space import Evaluation, Evaluator, SearchSpace

from evolve.search_spaces.nguyen import NGUYEN, Dataset, benchmark_dataset, read_csv, table_dataset

OPERATORS = ("add", "sub", "mul", "div", "sin", "cos", "exp", "log")
#: NRMSE below this sends a program to the exact-recovery check (float32 arithmetic leaves ~1e-7).
NEAR_EXACT = 1e-4
#: outputs of this many recent programs are kept for reuse (see `predictions`)
RECENT_OUTPUTS = 4096
#: The interpreter steps through every node slot of every program, used or not.
MAX_NODES = 10_000


class SymbolicRegression(SearchSpace):
    export_formats = ("sympy", "latex", "python", "json")

    def __init__(
        self,
        problem: str = "nguyen-1",
        target: str | None = None,
        max_nodes: int = 32,
        constants: bool | None = None,
        data_seed: int = 0,
        data: dict | None = None,
    ):
        """problem: a Nguyen benchmark name ("nguyen-1".."nguyen-12") or a CSV file (a header row, then
        numbers; any extension; ',', ';', tab or '|' between values).
        target: the CSV column to predict (default: the last).
        max_nodes: the most nodes a program may have, its inputs included (at most 10,000); mutations
        that would grow a program past it are not made.
        constants: allow constant nodes (default: off for the benchmarks, which are defined without
        them, on for CSV data).
        data_seed: seeds the benchmark's points and the probe points (0 or more).
        data: the table itself, {"columns": [...], "rows": [[...], ...]}, instead of reading `problem`:
        a run stores the data it was started on here (see options_to_store)."""
        if not _is_int(data_seed) or data_seed < 0:
            raise OptionError(f"data_seed must be a whole number of at least 0, got {data_seed!r}")
        if not _is_int(max_nodes) or not 2 <= max_nodes <= MAX_NODES:
            raise OptionError(f"max_nodes must be a whole number from 2 to {MAX_NODES}, got {max_nodes!r}")
        self._table: dict[str, Any] | None = None  # the data of a CSV problem, as options_to_store stores it
        if data is not None:
            if not isinstance(data, dict) or set(data) != {"columns", "rows"}:
                raise OptionError('data must be {"columns": [names], "rows": [[numbers], ...]}')
            self._table = data
            self.data: Dataset = table_dataset(data["columns"], data["rows"], target, data_seed, source=f"data of {problem}")
        elif problem.lower() in NGUYEN or not _names_a_file(problem):
            if target is not None:
                raise OptionError("target applies to CSV problems only")
            self.data = benchmark_dataset(problem.lower(), data_seed)
        else:
            columns, rows = read_csv(problem)
            self._table = {"columns": columns, "rows": rows}
            self.data = table_dataset(columns, rows, target, data_seed, source=problem)
        for name in self.data.names:
            unusable = _unusable_input_name(name)
            if unusable:
                raise OptionError(f"{problem}: column {name!r} {unusable}; rename the column")
        if constants is None:
            constants = self.data.benchmark is None
        n = len(self.data.names)
        if n + 1 > MAX_NODES:
            raise OptionError(f"{problem} has {n} input columns; symbolic regression takes at most {MAX_NODES - 1}")
        if max_nodes < n + 1:
            raise OptionError(f"{problem} has {n} input columns, so max_nodes (now {max_nodes}) must be at least"
                              f" {n + 1}: one node per input and one to compute with; pass --space-opt"
                              f" max_nodes={min(max(n + 1, 2 * n), MAX_NODES)}")
        self._vocab = Vocabulary(
            inputs=tuple(Input(name, "real") for name in self.data.names),
            output_types=("real",),
            ops=elementwise_ops(OPERATORS, "real"),
            max_nodes=max_nodes,
            const_type="real" if constants else None,
        )
        # Training points then probe points, in one array: one call gives fitness and fingerprint.
        self._x = np.concatenate([self.data.x, self.data.probe], axis=1).astype(np.float32)
        self._n_train = self.data.x.shape[1]
        self._recent: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    @classmethod
    def problems(cls) -> dict[str, str]:
        """The named problems `--problem` accepts (besides a CSV file), one line each, for `evolve plugins`."""
        return {name: f"{b.formula}  ({b.n_points} points on U[{b.low}, {b.high}]{'^2' if b.n_vars == 2 else ''})"
                for name, b in NGUYEN.items()}

    def options_to_store(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options a run built with `options` stores: those, and for a CSV problem the data
        itself, so the run is shown, exported and resumed on exactly the data it was made on, from
        any directory, after the file moved or changed, and on workers that never saw the file."""
        return dict(options) if self._table is None else {**options, "data": self._table}

    @functools.cached_property
    def interpreter(self):
        from evolve.interpreter import Interpreter

        return Interpreter(self._vocab)

    @functools.cached_property
    def _predict(self):
        """The compiled, vmapped interpreter over the data (built on the first program run)."""
        import jax
        import jax.numpy as jnp

        from evolve.interpreter import enable_compilation_cache

        enable_compilation_cache()
        run = jax.jit(jax.vmap(self.interpreter.run, in_axes=(0, None)))
        x = jnp.asarray(self._x)
        return lambda lowered: run(lowered, x)

    def build_evaluator(self) -> Evaluator:
        return SymbolicRegressionEvaluator(self)

    # ------------------------------------------------------------------ evaluation
    def predictions(self, programs: Sequence[Program]) -> np.ndarray:
        """float64 [len(programs), n_train + n_probe]: each program's output on training then probe points.

        The engine fingerprints a batch and then evaluates it: the outputs of recent programs are
        kept (by canonical hash, which fixes the computation) so the second call reuses the first's."""
        missing = list({p.digest: p for p in programs if p.digest not in self._recent}.values())
        for program, row in zip(missing, self.compute_predictions(missing)):
            self._recent[program.digest] = row
        rows = [self._recent[p.digest] for p in programs]
        while len(self._recent) > RECENT_OUTPUTS:
            self._recent.popitem(last=False)
        return np.stack(rows) if rows else np.zeros((0, self._x.shape[1]))

    def compute_predictions(self, programs: Sequence[Program]) -> np.ndarray:
        """`predictions` without the reuse: every program run by the compiled interpreter."""
        from evolve.interpreter import bucket_size

        out = []
        for start in range(0, len(programs), 1024):
            chunk = programs[start : start + 1024]
            lowered = self.interpreter.lower(chunk, pad_to=bucket_size(len(chunk)))
            out.append(np.asarray(self._predict(lowered), np.float64)[: len(chunk), 0])
        return np.concatenate(out) if out else np.zeros((0, self._x.shape[1]))

    def fingerprints(self, programs: Sequence[Program]) -> list[str]:
        """Outputs on training and probe points, to 6 significant digits, hashed."""
        out = []
        for row in self.predictions(programs):
            text = ",".join(f"{v:.6g}" for v in row.tolist())
            out.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
        return out

    def fingerprint(self, program: Program) -> str:
        return self.fingerprints([program])[0]

    # ------------------------------------------------------------------ export
    def describe(self, program: Program) -> str:
        import sympy

        from evolve.search_spaces import expressions

        return sympy.sstr(expressions.to_sympy(program.pruned(), expressions.symbols(self.data.names)))

    def export(self, program: Program, format: str) -> str:
        import sympy

        from evolve.search_spaces import expressions

        self.check_export_format(format)
        if format == "json":
            return program.to_json(indent=2)
        if format == "python":
            return expressions.to_python(program, self.data.names)
        expr = expressions.to_sympy(program.pruned(), expressions.symbols(self.data.names))
        if format == "latex":
            return sympy.latex(expr)
        return sympy.sstr(expr)

    def report_panel(self, program: Program):
        """The program against the training data: with one input, its curve over the data's range
        with the points (and the benchmark's formula); with several, predicted against actual."""
        from evolve.report_panel import Panel, Plot, Series
        from evolve.search_spaces import expressions

        data, names = self.data, self.data.names
        run = expressions.as_numpy_function(program, names)
        with np.errstate(all="ignore"):
            fitted = np.broadcast_to(np.asarray(run(*data.x), np.float64), data.y.shape)
        rmse = float(np.sqrt(np.mean((fitted - data.y) ** 2)))
        text = [f"RMSE {rmse:.4g} on the {data.y.size} training points (NumPy, float64)."]
        if len(names) > 1:
            span = [float(data.y.min()), float(data.y.max())]
            plot = Plot("predicted against actual (training points)", "actual", "predicted",
                        [Series("training points", data.y, fitted, points=True), Series("exact fit", span, span)])
            return Panel("Fit to the data", text, [plot])
        grid = np.linspace(data.x[0].min(), data.x[0].max(), 200)
        with np.errstate(all="ignore"):
            curve = np.broadcast_to(np.asarray(run(grid), np.float64), grid.shape)
        reach = float(np.ptp(data.y)) or 1.0  # where the curve leaves the data's range far behind, it is cut
        curve = np.where((curve < data.y.min() - reach) | (curve > data.y.max() + reach), np.nan, curve)
        series = [Series("program", grid, curve)]
        if data.benchmark is not None:
            import sympy

            symbols = sympy.symbols(names)
            target = sympy.lambdify(symbols, sympy.sympify(data.benchmark.formula), "numpy")
            with np.errstate(all="ignore"):
                series.append(Series(f"target {data.benchmark.formula}", grid,
                                     np.broadcast_to(np.asarray(target(grid), np.float64), grid.shape), dashed=True))
        series.append(Series("training points", data.x[0], data.y, points=True))  # drawn last: on top
        return Panel("Fit to the data", text, [Plot("the program against the data", names[0], "y", series)])


class SymbolicRegressionEvaluator(Evaluator):
    """Fitness 1/(1 + NRMSE) from the grammar's outputs on the training points (the fingerprint of the
    same batch computed them already: they are reused), and the exact-recovery check on benchmarks."""

    def __init__(self, space: SymbolicRegression):
        self.space = space
        self._y = space.data.y
        self._y_scale = float(np.std(self._y)) or 1.0

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        preds = self.space.predictions(programs)[:, : self.space._n_train]
        results = []
        for program, pred in zip(programs, preds):
            if not np.all(np.isfinite(pred)):
                results.append(Evaluation.failure("non-finite output"))
                continue
            nrmse = float(np.sqrt(np.mean((pred - self._y) ** 2)) / self._y_scale)
            metrics = {"nrmse": nrmse}
            if self.space.data.benchmark is not None:
                proof = self._recovers(program) if nrmse < NEAR_EXACT else None
                metrics["solved"] = proof is not None
                if proof:
                    metrics["proof"] = proof
            results.append(Evaluation(1.0 / (1.0 + nrmse), metrics))
        return results

    @functools.lru_cache(maxsize=4096)
    def _recovers(self, program: Program) -> str | None:
        from evolve.search_spaces import expressions

        b = self.space.data.benchmark
        return expressions.recovers(program, b.formula, self.space.data.names, b.low, b.high)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _names_a_file(problem: str) -> bool:
    """Whether `problem` is meant as a data file rather than a benchmark name."""
    return os.path.exists(problem) or os.sep in problem or "." in os.path.basename(problem)


def _unusable_input_name(name: str) -> str | None:
    """Why a column cannot name a program input, or None. Inputs are the arguments of the exported
    Python function and the symbols of the printed formulas, so a keyword, an operator's name, or a
    name the exported code uses itself (np, and names starting with _) would make them unreadable
    or invalid."""
    if keyword.iskeyword(name):
        return "is a Python keyword"
    if name in OPERATORS:
        return "is the name of an operator"
    if name == "np" or name.startswith("_"):
        return "is a name the exported Python code uses (np, or a name starting with _)"
    return None


@hookimpl
def evolve_search_spaces():
    return {"symbolic-regression": SymbolicRegression}
