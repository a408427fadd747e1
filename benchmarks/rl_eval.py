"""Seconds per RL-loss candidate: the DQN compiled once with the loss as data, against jitting a fresh
DQN per candidate (its loss exported as Python source, `space.export(program, "jax")`).

Same candidates (DQN, Double DQN, DQNReg, DQNClipped, then mutations of DQN), same environment,
steps and seeds, same training loop (rl_dqn.dqn_task in evolve.harness), in one run. Both paths
start with an empty, private JAX compilation cache; their training runs are compared run by run
(same returns) before any figure is reported. Also reported: the evaluator's one-off setup (the
compilation and DQN's reference run), seconds per candidate through `evaluate` (training plus
scoring, the hurdle included), the fresh path's training alone (a second call of its compiled
function: what is left once compilation is paid), and the worker's peak resident memory.

    nice -n 10 python benchmarks/rl_eval.py [--config cheap] [--candidates 8] [--no-fresh]

With --config full (three environments) or --no-fresh it measures the evaluator alone (setup, then
`evaluate`; no plot) and writes rl_eval_CONFIG_evaluator.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

os.environ["EVOLVE_JAX_CACHE"] = tempfile.mkdtemp(prefix="evolve-bench-cache-")  # cold for both paths

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, save_json, table  # noqa: E402

from evolve.harness import Harness  # noqa: E402
from evolve.plugin_manager import PluginManager, SpaceSpec  # noqa: E402
from evolve.search_spaces.rl_dqn import DQNConfig, dqn_task, rlax_convention  # noqa: E402

KNOWN = ("dqn", "double_dqn", "dqn_reg", "dqn_clipped")


def candidates(space, n: int, rng: np.random.Generator) -> list:
    """The four known losses, then mutations of DQN, all behaving differently."""
    out = [space.known_loss(name) for name in KNOWN]
    seen = set(space.fingerprints(out))
    while len(out) < n:
        child = space.mutate(out[0], rng)
        (fingerprint,) = space.fingerprints([child])
        if fingerprint not in seen:
            seen.add(fingerprint)
            out.append(child)
    return out[:n]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fresh_harness(space, scorer, program) -> Harness:
    """What a search without the interpreter does: the candidate's loss as source, exec'd, and a DQN
    jitted for it (same loop, environment, steps, learning rate and seeds as the evaluator's)."""
    module: dict = {}
    exec(compile(space.export(program, "jax"), "candidate.py", "exec"), module)
    config = DQNConfig(steps=scorer.steps)
    task = dqn_task(scorer.env, config, rlax_convention(module["loss"]))
    return Harness([task], jnp.asarray([config.learning_rate], jnp.float32), range(space.config.seeds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cheap", choices=("cheap", "full"))
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--no-fresh", action="store_true", help="measure the compile-once evaluator only")
    args = parser.parse_args()
    fresh = not args.no_fresh and args.config == "cheap"

    start = time.perf_counter()
    space = PluginManager().make_space(SpaceSpec("rl-losses", {"config": args.config}))
    programs = candidates(space, args.candidates, np.random.default_rng(0))
    evaluator = space.evaluator
    setup = time.perf_counter() - start  # compilations, one per environment, plus DQN's reference runs
    rss_setup = peak_rss_mib()
    rows = evaluator.lower(programs)
    print(f"setup {setup:.1f} s ({len(evaluator.scorers)} environments), peak RSS {rss_setup:.0f} MiB")

    ours, once_seconds = [], []
    for row in rows if fresh else []:
        t0 = time.perf_counter()
        ours.append(evaluator.scorers[0].harness.run(row)[0])
        once_seconds.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    evaluations = evaluator.evaluate(programs)
    evaluate_seconds = (time.perf_counter() - t0) / len(programs)  # every environment a candidate reaches, scored
    rss_once = peak_rss_mib()
    for program, evaluation in zip(programs, evaluations):
        print(f"  {evaluation.fitness:8.3f}  {evaluation.error or ''}  {space.describe(program)[:100]}")

    result = {
        "config": args.config, "environments": [s.name for s in evaluator.scorers], "steps": {s.name: s.steps for s in evaluator.scorers},
        "seeds": space.config.seeds, "candidates": len(programs), "setup_s": setup,
        "compile_once_s_per_candidate": float(np.mean(once_seconds)) if once_seconds else None, "evaluate_s_per_candidate": evaluate_seconds,
        "compile_once_s": once_seconds, "peak_rss_mib_after_setup": rss_setup, "peak_rss_mib_compile_once": rss_once,
        "fitness": [None if e.failed else e.fitness for e in evaluations], "errors": [e.error for e in evaluations],
        "formulas": [space.describe(p) for p in programs],
    }
    table_rows = [
        ["compile once (program as data), hurdle env", f"{np.mean(once_seconds):.2f}" if once_seconds else "-", f"setup {setup:.1f} s once per worker"],
        ["  evaluate (every env reached, scored)", f"{evaluate_seconds:.2f}", "-"],
    ]
    if fresh:
        theirs, jit_seconds, rerun_seconds = [], [], []
        for program in programs:
            harness = fresh_harness(space, evaluator.scorers[0], program)
            t0 = time.perf_counter()
            theirs.append(harness.run(jnp.zeros(1))[0])
            jit_seconds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            harness.run(jnp.zeros(1))  # compiled already: the training alone
            rerun_seconds.append(time.perf_counter() - t0)
        # the same runs, fused differently by XLA: rounding may differ and a chaotic run amplify it
        a = np.concatenate([o["mean_return"].ravel() for o in ours])
        b = np.concatenate([t["mean_return"].ravel() for t in theirs])
        same = np.isclose(a, b, rtol=1e-3) | (np.isnan(a) & np.isnan(b))
        print(f"{same.mean():.0%} of {same.size} training runs end with the same return (rtol 1e-3) on both paths")
        assert same.mean() > 0.5, "the two paths disagree: the comparison would be meaningless"
        per_jit = float(np.mean(jit_seconds))
        table_rows.append(["export + jax.jit of a fresh DQN per candidate", f"{per_jit:.2f}", "-"])
        table_rows.append(["  its training alone (second call, compiled)", f"{np.mean(rerun_seconds):.2f}", "-"])
        result.update({"jit_per_candidate_s": per_jit, "jit_s": jit_seconds, "fresh_training_only_s": rerun_seconds, "speedup": per_jit / float(np.mean(once_seconds)),
                       "runs_agreeing": float(same.mean()), "returns_compile_once": a.tolist(), "returns_fresh_jit": b.tolist(),
                       "peak_rss_mib_end": peak_rss_mib()})
    print(table(table_rows, ["method", "s / candidate", "one-off"]))
    if fresh:
        print(f"speed-up: {result['speedup']:.1f}x over {len(programs)} candidates")
    name = "rl_eval" if fresh else f"rl_eval_{args.config}_evaluator"  # the comparison keeps its own file
    save_json(name, result)
    if fresh:
        plot(name, once_seconds, result["jit_s"], args.config)


def plot(name: str, once: list[float], per_jit: list[float] | None, config: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.arange(1, len(once) + 1)
    if per_jit:
        ax.plot(x, per_jit, "o-", label="export + jax.jit of a fresh DQN per candidate")
    ax.plot(x, once, "o-", label="DQN compiled once, loss program as data")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("candidate")
    ax.set_ylabel("seconds to train (hurdle env)")
    title = f"RL-loss candidates ({config})"
    if per_jit:
        title += f": {np.mean(per_jit) / np.mean(once):.1f}x faster compiled once"
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(figure_path(name), dpi=120)
    print(f"wrote {figure_path(name)}")


if __name__ == "__main__":
    main()
