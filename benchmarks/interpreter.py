"""Programs evaluated per second: the compiled interpreter against jax.jit per program and NumPy.

Same random symbolic-regression programs on the same Nguyen data, in one run. Every method's
outputs are checked against the others before any figure is reported.

    python benchmarks/interpreter.py [--programs 2000] [--jit-programs 40]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, save_json, table  # noqa: E402

from evolve.ops import CONST, INPUT, elementwise_ops  # noqa: E402
from evolve.plugin_manager import PluginManager, SpaceSpec  # noqa: E402

JNP_OPS = {op.name: op.fn for op in elementwise_ops(["add", "sub", "mul", "div", "sin", "cos", "exp", "log"], "real")}
NP_OPS = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply,
    "div": lambda a, b: np.where(np.abs(b) > 1e-3, a / np.where(np.abs(b) > 1e-3, b, 1.0), 1.0),
    "sin": np.sin, "cos": np.cos, "exp": lambda a: np.exp(np.minimum(a, 80.0)),
    "log": lambda a: np.where(np.abs(a) > 1e-3, np.log(np.where(np.abs(a) > 1e-3, np.abs(a), 1.0)), 0.0),
}


def run_with(ops, program, inputs):
    """Evaluate a program node by node with the given op table (traced by jax.jit, or plain NumPy)."""
    values = []
    for i, node in enumerate(program.nodes):
        if node.op == INPUT:
            values.append(inputs[i])
        elif node.op == CONST:
            values.append(node.value + 0 * inputs[0])
        else:
            values.append(ops[node.op](*(values[j] for j in node.inputs)))
    return values[program.outputs[0]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--jit-programs", type=int, default=40, help="jit-per-program is slow: time a subset")
    args = parser.parse_args()

    space = PluginManager().make_space(SpaceSpec("symbolic-regression", {"problem": "nguyen-4"}))
    rng = np.random.default_rng(0)
    programs = [space.random_program(rng) for _ in range(args.programs)]
    x32 = np.asarray(space.data.x, np.float32)

    # compiled interpreter: one compiled function, programs as data, vmapped in batches
    space.compute_predictions(programs[:8])  # one-time compile of the smallest bucket, reported separately
    start = time.perf_counter()
    space.compute_predictions(programs)  # includes the compile of the large bucket, if it is new
    first = time.perf_counter() - start
    start = time.perf_counter()
    interp = space.compute_predictions(programs)[:, : x32.shape[1]]
    t_interp = time.perf_counter() - start

    # NumPy, one program at a time
    start = time.perf_counter()
    with np.errstate(all="ignore"):
        numpy_out = np.array([np.broadcast_to(run_with(NP_OPS, p, x32), x32.shape[1:]) for p in programs], np.float64)
    t_numpy = time.perf_counter() - start

    # jax.jit per program: what a naive implementation pays (compile each candidate)
    subset = programs[: args.jit_programs]
    start = time.perf_counter()
    jit_out = []
    for p in subset:
        fn = jax.jit(lambda xs, p=p: jnp.broadcast_to(run_with(JNP_OPS, p, xs), xs.shape[1:]))
        jit_out.append(np.asarray(fn(jnp.asarray(x32)), np.float64))
    t_jit = time.perf_counter() - start

    finite = np.isfinite(interp) & np.isfinite(numpy_out)
    agree_np = np.allclose(interp[finite], numpy_out[finite], rtol=1e-4, atol=1e-4)
    sub = np.array(jit_out)
    finite_j = np.isfinite(sub) & np.isfinite(interp[: len(subset)])
    agree_jit = np.allclose(interp[: len(subset)][finite_j], sub[finite_j], rtol=1e-4, atol=1e-4)
    if not (agree_np and agree_jit):
        raise SystemExit("outputs disagree between methods; no figures reported")

    per = {
        "compiled interpreter (batched)": t_interp / len(programs),
        "numpy (per program)": t_numpy / len(programs),
        "jax.jit per program": t_jit / len(subset),
    }
    rows = [[name, f"{1 / s:,.0f}", f"{s * 1e6:,.1f}", f"{per['jax.jit per program'] / s:,.1f}x"] for name, s in per.items()]
    print(table(rows, ["method", "programs/s", "us/program", "speed-up vs jit"]))
    print(f"first call with compilation: {first:.2f} s for {len(programs)} programs")
    save_json(
        "interpreter",
        {
            "programs": len(programs),
            "jit_programs": len(subset),
            "problem": "nguyen-4",
            "mean_nodes": float(np.mean([len(p.nodes) for p in programs])),
            "seconds_per_program": per,
            "speedup_vs_jit_per_program": per["jax.jit per program"] / per["compiled interpreter (batched)"],
            "speedup_vs_numpy": per["numpy (per program)"] / per["compiled interpreter (batched)"],
            "first_call_seconds": first,
            "checked": "interpreter outputs equal NumPy's on all programs and jit's on the subset (rtol 1e-4)",
        },
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(list(per), [1 / s for s in per.values()])
    ax.set_xscale("log")
    ax.set_xlabel("programs evaluated per second (log)")
    ax.set_title("symbolic regression, Nguyen-4, 20 points")
    fig.tight_layout()
    fig.savefig(figure_path("interpreter"), dpi=120)


if __name__ == "__main__":
    main()
