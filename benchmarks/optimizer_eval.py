"""Seconds per optimizer-candidate evaluation: the compile-once training harness against building and
jitting an optax optimizer per candidate.

Same candidates (the four seeds and mutations of them), same training suite, same lr grid and seeds,
same training loop (evolve.harness), in one run. Both paths start with an empty, private JAX
compilation cache, and their losses are checked against each other before any figure is reported.

With --golden, also checks that the default settings reproduce, bit for bit, the fitnesses recorded
with the code before the harness (tests/golden/optimizers.json; the fast tests check the cheap ones).

    nice -n 10 python benchmarks/optimizer_eval.py [--candidates 10] [--golden]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

os.environ["EVOLVE_JAX_CACHE"] = tempfile.mkdtemp(prefix="evolve-bench-cache-")  # cold for both paths

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, save_json, table  # noqa: E402

from evolve.harness import Harness, program_rows  # noqa: E402
from evolve.plugin_manager import PluginManager, SpaceSpec  # noqa: E402
from evolve.program import Program  # noqa: E402
from evolve.search_spaces import optimizer_programs, optimizer_tasks  # noqa: E402
from evolve.search_spaces.optimizer_optax import to_optax  # noqa: E402
from evolve.search_spaces.optimizer_training import optax_update, training_task  # noqa: E402

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "golden", "optimizers.json")


def candidates(space, n: int, rng: np.random.Generator) -> list:
    """The seeds, then mutations of them, all different."""
    out = [f() for f in optimizer_programs.SEEDS.values()]
    while len(out) < n:
        child = space.mutate(out[int(rng.integers(len(out)))], rng)
        if child not in out:
            out.append(child)
    return out[:n]


def optax_harness(space, program, steps: int) -> Harness:
    """What a search without the interpreter does: a fresh optax transformation per candidate, so a
    fresh harness whose every task is jitted anew (same loop, grid and seeds as the space's)."""
    optimizer = lambda _, lr: optax_update(to_optax(program, space.vocabulary, lr))  # noqa: E731
    problems = optimizer_tasks.suite(space.suite)
    return Harness([training_task(p, steps, optimizer) for p in problems], jnp.asarray(space.lr_grid, jnp.float32), range(space.n_seeds))


def final_losses(outcomes) -> np.ndarray:
    """[tasks, lrs, seeds] final losses from the harness's per-task (initial, final) outcomes."""
    return np.stack([final for _, final in outcomes])


def check_golden() -> dict:
    """Fitnesses at the default settings against those recorded with the code before the harness."""
    with open(GOLDEN) as f:
        golden = json.load(f)
    programs = {name: Program.from_dict(d) for name, d in golden["programs"].items()}
    report = {}
    for setting in ("train-default", "heldout-default"):
        space = PluginManager().make_space(SpaceSpec("optimizers", golden["settings"][setting]))
        expected = golden["fitness"][setting]
        got = space.evaluate([programs[name] for name in expected])
        differ = [name for (name, want), e in zip(expected.items(), got)
                  if ((None if math.isinf(e.fitness) else e.fitness), e.error) != (want["fitness"], want["error"])]
        print(f"golden {setting}: {len(expected) - len(differ)} of {len(expected)} fitnesses identical"
              + (f"; differ: {', '.join(differ)}" if differ else ""))
        report[setting] = {"programs": len(expected), "identical": len(expected) - len(differ), "differ": differ}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=10)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--golden", action="store_true", help="also check the default settings' golden fitnesses")
    args = parser.parse_args()

    start = time.perf_counter()
    space = PluginManager().make_space(SpaceSpec("optimizers", {"steps": args.steps}))
    grammar = time.perf_counter() - start  # what `evolve top` pays for the space
    evaluator = space.evaluator
    setup = time.perf_counter() - start  # the one compilation per worker, plus Adam's reference run
    programs = candidates(space, args.candidates, np.random.default_rng(0))
    rows = program_rows(evaluator.interpreter.lower(programs))

    ours, once_seconds = [], []
    for row in rows:
        t0 = time.perf_counter()
        ours.append(final_losses(evaluator.harness.run(row)))
        once_seconds.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    space.evaluate(programs)
    evaluate_seconds = (time.perf_counter() - t0) / len(programs)  # training plus scoring against Adam

    theirs, jit_seconds = [], []
    for program in programs:
        t0 = time.perf_counter()
        theirs.append(final_losses(optax_harness(space, program, args.steps).run(None)))
        jit_seconds.append(time.perf_counter() - t0)

    # The same training runs, fused differently by XLA: float32 rounding differs, and a few chaotic
    # runs (a large learning rate on a non-convex task) amplify it, so agreement is checked per run.
    ours_all, theirs_all = np.concatenate([a.ravel() for a in ours]), np.concatenate([t.ravel() for t in theirs])
    same = np.isclose(ours_all, theirs_all, rtol=1e-3, atol=1e-6) | (~np.isfinite(ours_all) & ~np.isfinite(theirs_all))
    print(f"{same.mean():.1%} of {same.size} training runs end at the same loss (rtol 1e-3) on both paths")
    assert same.mean() > 0.9, "the two paths disagree: the comparison would be meaningless"

    once, per_jit = float(np.mean(once_seconds)), float(np.mean(jit_seconds))
    table_rows = [
        ["compile once (harness, program as data)", f"{once:.3f}", f"{setup:.1f} s once per worker"],
        ["  the same, with scoring against Adam", f"{evaluate_seconds:.3f}", "-"],
        ["optax + jax.jit per candidate", f"{per_jit:.3f}", "-"],
    ]
    print(table(table_rows, ["method", "s / candidate", "one-off"]))
    print(f"grammar only (what evolve top builds): {grammar:.3f} s")
    print(f"speed-up: {per_jit / once:.1f}x over {len(programs)} candidates "
          f"({len(evaluator.task_names)} tasks x {len(space.lr_grid)} lrs x {space.n_seeds} seeds x {args.steps} steps each)")
    golden = check_golden() if args.golden else None
    save_json("optimizer_eval", {
        "candidates": len(programs), "steps": args.steps, "tasks": list(evaluator.task_names),
        "lr_grid": list(space.lr_grid), "seeds": space.n_seeds, "grammar_s": grammar,
        "compile_once_setup_s": setup, "compile_once_s_per_candidate": once, "evaluate_s_per_candidate": evaluate_seconds,
        "jit_per_candidate_s": per_jit, "speedup": per_jit / once, "runs_agreeing": float(same.mean()),
        "compile_once_s": once_seconds, "jit_s": jit_seconds, **({"golden": golden} if golden else {}),
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
