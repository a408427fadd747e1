"""Seconds per optimizer-candidate evaluation: the compile-once training loop against building and
jitting an optax optimizer per candidate.

Same candidates (the four seeds and mutations of them), same training suite, same lr grid and seeds,
in one run. Both paths start with an empty, private JAX compilation cache, and their losses are
checked against each other before any figure is reported.

    nice -n 10 python benchmarks/optimizer_eval.py [--candidates 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ["EVOLVE_JAX_CACHE"] = tempfile.mkdtemp(prefix="evolve-bench-cache-")  # cold for both paths

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, save_json, table  # noqa: E402

from evolve.plugin_manager import SpaceSpec, default_manager  # noqa: E402
from evolve.search_spaces import optimizer_programs  # noqa: E402
from evolve.search_spaces.optimizer_export import to_optax  # noqa: E402
from evolve.search_spaces.optimizer_training import optax_update, train  # noqa: E402


def candidates(space, n: int, rng: np.random.Generator) -> list:
    """The seeds, then mutations of them, all different."""
    out = [f() for f in optimizer_programs.SEEDS.values()]
    while len(out) < n:
        child = space.mutate(out[int(rng.integers(len(out)))], rng)
        if child not in out:
            out.append(child)
    return out[:n]


def optax_trainer(space, program, steps: int):
    """What a search without the interpreter does: a fresh optax transformation per candidate, its
    training loop over the suite jitted anew (vmapped over lrs and seeds exactly as the space does)."""

    def trainer(lrs, seeds):
        finals = []
        for task in space.tasks:
            def one(lr, seed, task=task):
                init, update = optax_update(to_optax(program, space.vocabulary, lr))
                return task.loss(train(task, steps, jax.random.key(seed), init, update))

            finals.append(jax.vmap(jax.vmap(one, in_axes=(None, 0)), in_axes=(0, None))(lrs, seeds))
        return jnp.stack(finals)

    return jax.jit(trainer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    start = time.perf_counter()
    space = default_manager().make_space(SpaceSpec("optimizers", {"steps": args.steps}))
    setup = time.perf_counter() - start  # the one compilation per worker (plus Adam's reference run)
    programs = candidates(space, args.candidates, np.random.default_rng(0))

    ours, once_seconds = [], []
    for program in programs:
        t0 = time.perf_counter()
        ours.append(space.training_losses(program)[1])
        once_seconds.append(time.perf_counter() - t0)

    lrs, seeds = jnp.asarray(space.lr_grid, jnp.float32), jnp.arange(space.n_seeds, dtype=jnp.int32)
    theirs, jit_seconds = [], []
    for program in programs:
        t0 = time.perf_counter()
        theirs.append(np.asarray(optax_trainer(space, program, args.steps)(lrs, seeds)))
        jit_seconds.append(time.perf_counter() - t0)

    # The same training runs, fused differently by XLA: float32 rounding differs, and a few chaotic
    # runs (a large learning rate on a non-convex task) amplify it, so agreement is checked per run.
    ours_all, theirs_all = np.concatenate([a.ravel() for a in ours]), np.concatenate([t.ravel() for t in theirs])
    same = np.isclose(ours_all, theirs_all, rtol=1e-3, atol=1e-6) | (~np.isfinite(ours_all) & ~np.isfinite(theirs_all))
    print(f"{same.mean():.1%} of {same.size} training runs end at the same loss (rtol 1e-3) on both paths")
    assert same.mean() > 0.9, "the two paths disagree: the comparison would be meaningless"

    once, per_jit = float(np.mean(once_seconds)), float(np.mean(jit_seconds))
    rows = [
        ["compile once (interpreter)", f"{once:.3f}", f"{setup:.1f} s once per worker"],
        ["optax + jax.jit per candidate", f"{per_jit:.3f}", "-"],
    ]
    print(table(rows, ["method", "s / candidate", "one-off"]))
    print(f"speed-up: {per_jit / once:.1f}x over {len(programs)} candidates "
          f"({len(space.tasks)} tasks x {len(space.lr_grid)} lrs x {space.n_seeds} seeds x {args.steps} steps each)")
    save_json("optimizer_eval", {
        "candidates": len(programs), "steps": args.steps, "tasks": list(space.task_names),
        "lr_grid": list(space.lr_grid), "seeds": space.n_seeds,
        "compile_once_setup_s": setup, "compile_once_s_per_candidate": once, "jit_per_candidate_s": per_jit,
        "speedup": per_jit / once, "runs_agreeing": float(same.mean()), "compile_once_s": once_seconds, "jit_s": jit_seconds,
    })
    plot(once_seconds, jit_seconds)


def plot(once: list[float], per_jit: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(1, len(once) + 1)
    ax.plot(x, per_jit, "o-", label="optax + jax.jit per candidate")
    ax.plot(x, once, "o-", label="compile once, program as data")
    ax.set_yscale("log")
    ax.set_xlabel("candidate")
    ax.set_ylabel("seconds to evaluate")
    ax.set_title(f"Optimizer candidates: {np.mean(per_jit) / np.mean(once):.0f}x faster compiled once")
    ax.legend()
    fig.tight_layout()
    fig.savefig(figure_path("optimizer_eval"), dpi=120)
    print(f"wrote {figure_path('optimizer_eval')}")


if __name__ == "__main__":
    main()
