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

With --config full or --no-fresh it measures the evaluator alone (setup, then `evaluate`; no plot)
and writes rl_eval_CONFIG_evaluator.json.

    nice -n 10 python benchmarks/rl_eval.py --update-cost CartPole-v1 Acrobot-v1 Catch-bsuite Breakout-MinAtar Pong-misc

measures only one update (DQN's loss and gradient, 2 seeds) interpreted and hand-written on each
environment, whose observation size sets the interpreted update's cost (the interpreter's packed
buffer gives every node a slot as wide as the widest type, the observation), and writes
rl_eval_update_cost.json and .png. Two interpreted forms (rl_loss_fn.LOSS_FORMS), checked to give
the hand-written update first: "states", for programs whose ops read or make states, and "no
states", for those whose ops do not (DQN among them), whose interpreter sees placeholder states of
width 1. Measured on a loaded 2-core machine (CPU per update of 2 seeds; states / no states /
hand-written): CartPole-v1 (4 numbers) 114 / 145 / 62 us, Acrobot-v1 (6) 74 / 97 / 53, Catch-bsuite
(50) 238 / 183 / 51, Breakout-MinAtar (400) 1,920 / 295 / 219 (8.8x and 1.3x), Pong-misc (3,600)
24,494 / 2,206 / 1,006 (24.3x and 2.2x). On narrow observations the two forms are within noise
(rl_evaluator.NARROW_STATES keeps one compiled DQN there); on wide ones a loss without state ops is
10x cheaper. A program with state ops still costs about 8 CPU minutes per 20,000-step run on Pong,
which is why no preset trains on it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

os.environ["EVOLVE_JAX_CACHE"] = tempfile.mkdtemp(prefix="evolve-bench-cache-")  # cold for both paths

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, figure_path, save_json, table  # noqa: E402

from evolve.harness import Harness  # noqa: E402
from evolve.plugin_manager import PluginManager, SpaceSpec  # noqa: E402
from evolve.search_spaces import rl_loss_fn  # noqa: E402
from evolve.search_spaces.rl_dqn import DQNConfig, dqn_task, q_network, rlax_convention  # noqa: E402

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


def cpu_and_wall():
    return time.process_time(), time.perf_counter()


def since(start) -> tuple[float, float]:
    """(CPU seconds, wall seconds) since `start` = cpu_and_wall()."""
    cpu, wall = cpu_and_wall()
    return cpu - start[0], wall - start[1]


def random_batch(key, env, config: DQNConfig) -> dict:
    k = jax.random.split(key, 4)
    return {
        "s_tm1": jax.random.normal(k[0], (config.batch_size, env.obs_dim)),
        "a_tm1": jax.random.randint(k[1], (config.batch_size,), 0, env.num_actions),
        "r_t": jax.random.normal(k[2], (config.batch_size,)),
        "discount_t": jnp.full((config.batch_size,), config.gamma),
        "s_t": jax.random.normal(k[3], (config.batch_size, env.obs_dim)),
    }


def one_update(make_loss, program, env, seed: int = 0):
    """A DQN update's loss and gradient (numpy) at a random batch and fresh networks."""
    config = DQNConfig()
    init, q_apply = q_network(config.hidden, env.obs_dim, env.num_actions)
    key = jax.random.key(seed)
    online, target = init(key), init(jax.random.fold_in(key, 1))
    value, grads = jax.jit(jax.value_and_grad(make_loss(q_apply), argnums=1))(program, online, target, random_batch(key, env, config))
    return jax.tree.map(np.asarray, (value, grads))


def same_update(a, b) -> bool:
    """Two (loss, gradient) pairs agree as the tests ask (both non-finite counts as agreeing)."""
    if not np.isfinite(a[0]) or not np.isfinite(b[0]):
        return not np.isfinite(a[0]) and not np.isfinite(b[0])
    leaves = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return all(np.allclose(x, y, rtol=1e-3, atol=1e-5) for x, y in leaves)


def update_cost(loss_fn, program, env, seeds: int, updates: int = 200, repeats: int = 5) -> dict:
    """One DQN update's loss and gradient alone: `updates` of them in a lax.scan, vmapped over the
    seeds, on a fixed random batch, as the training loop runs them (rl_dqn.dqn_task). Its compile
    seconds, and the per-update microseconds of the fastest of `repeats` calls (CPU and wall)."""
    config = DQNConfig()
    init, q_apply = q_network(config.hidden, env.obs_dim, env.num_actions)
    loss = loss_fn(q_apply)
    value_and_grad = jax.value_and_grad(loss, argnums=1)

    def one_seed(program, key):
        params = init(key)
        batch = random_batch(key, env, config)

        def body(online, _):
            value, grads = value_and_grad(program, online, params, batch)
            return jax.tree.map(lambda p, g: p - config.learning_rate * g, online, grads), value

        return jax.lax.scan(body, params, None, length=updates)[1]

    keys = jax.random.split(jax.random.key(0), seeds)
    start = cpu_and_wall()
    compiled = jax.jit(jax.vmap(one_seed, in_axes=(None, 0))).lower(program, keys).compile()
    compile_cpu, compile_wall = since(start)
    compiled(program, keys).block_until_ready()
    cpu, wall = [], []
    for _ in range(repeats):
        start = cpu_and_wall()
        compiled(program, keys).block_until_ready()
        c, w = since(start)
        cpu.append(c / updates * 1e6)
        wall.append(w / updates * 1e6)
    return {"compile_cpu_s": compile_cpu, "compile_wall_s": compile_wall, "update_cpu_us": min(cpu), "update_wall_us": min(wall)}


def exported_loss(space, program):
    """The candidate's loss as source (`space.export(program, "jax")`), exec'd."""
    module: dict = {}
    exec(compile(space.export(program, "jax"), "candidate.py", "exec"), module)
    return module["loss"]


def fresh_harness(space, scorer, loss) -> Harness:
    """What a search without the interpreter does: a DQN jitted for the candidate's exported loss
    (same loop, environment, steps, learning rate and seeds as the evaluator's)."""
    config = DQNConfig(steps=scorer.steps)
    task = dqn_task(scorer.env, config, rlax_convention(loss))
    return Harness([task], jnp.asarray([config.learning_rate], jnp.float32), range(space.config.seeds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="cheap", choices=("cheap", "full"))
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--no-fresh", action="store_true", help="measure the compile-once evaluator only")
    parser.add_argument("--label", default="latest", help="the run's name in rl_eval.json (e.g. before, after)")
    parser.add_argument("--update-cost", nargs="+", metavar="ENV", help="only one update's cost on each of these environments")
    args = parser.parse_args()
    if args.update_cost:
        return update_cost_by_environment(args.update_cost)
    fresh = not args.no_fresh and args.config == "cheap"

    start = cpu_and_wall()
    space = PluginManager().make_space(SpaceSpec("rl-losses", {"config": args.config}))
    programs = candidates(space, args.candidates, np.random.default_rng(0))
    evaluator = space.evaluator
    setup_cpu, setup = since(start)  # compilations, one per environment, plus DQN's reference runs
    rss_setup = peak_rss_mib()
    rows = evaluator.lower(programs)
    print(f"setup {setup:.1f} s ({setup_cpu:.1f} s CPU, {len(evaluator.scorers)} environments), peak RSS {rss_setup:.0f} MiB")

    ours, once_seconds, once_cpu = [], [], []
    for row in rows if fresh else []:
        start = cpu_and_wall()
        ours.append(evaluator.scorers[0].run(row))
        cpu, wall = since(start)
        once_seconds.append(wall)
        once_cpu.append(cpu)
    start = cpu_and_wall()
    evaluations = evaluator.evaluate(programs)
    evaluate_cpu, evaluate_seconds = (t / len(programs) for t in since(start))  # every environment a candidate reaches, scored
    rss_once = peak_rss_mib()
    for program, evaluation in zip(programs, evaluations):
        print(f"  {evaluation.fitness:8.3f}  {evaluation.error or ''}  {space.describe(program)[:100]}")

    # the update alone: the evaluator's loss (DQN as the program) against the hand-written DQN loss
    env, dqn = evaluator.scorers[0].env, evaluator.lower([space.known_loss("dqn")])[0]
    updates = {
        "interpreted": update_cost(evaluator.make_loss_of("states"), dqn, env, space.config.seeds),
        "interpreted_no_states": update_cost(evaluator.make_loss_of("no states"), dqn, env, space.config.seeds),
        # the other compiled DQN's loss, for programs applying the network to a state they computed
        "interpreted_network_inside": update_cost(lambda q_apply: rl_loss_fn.make_loss(space.vocabulary, q_apply), dqn, env, space.config.seeds),
        "hand_written": update_cost(lambda q_apply: (lambda program, o, t, b: rl_loss_fn.dqn_loss(q_apply)(o, t, b)), jnp.zeros(1), env, space.config.seeds),
    }
    for name, cost in updates.items():
        print(f"update, {name}: {cost['update_cpu_us']:.0f} us CPU ({cost['update_wall_us']:.0f} us wall) per update of {space.config.seeds} seeds;"
              f" compile {cost['compile_cpu_s']:.1f} s CPU ({cost['compile_wall_s']:.1f} s wall)")

    result = {
        "label": args.label,
        "config": args.config, "environments": [s.name for s in evaluator.scorers], "steps": {s.name: s.steps for s in evaluator.scorers},
        "seeds": space.config.seeds, "candidates": len(programs), "setup_s": setup, "setup_cpu_s": setup_cpu,
        "compile_once_s_per_candidate": float(np.mean(once_seconds)) if once_seconds else None, "evaluate_s_per_candidate": evaluate_seconds,
        "compile_once_cpu_s_per_candidate": float(np.mean(once_cpu)) if once_cpu else None, "evaluate_cpu_s_per_candidate": evaluate_cpu,
        "compile_once_s": once_seconds, "compile_once_cpu_s": once_cpu, "peak_rss_mib_after_setup": rss_setup, "peak_rss_mib_compile_once": rss_once,
        "update": updates,
        "fitness": [None if e.failed else e.fitness for e in evaluations], "errors": [e.error for e in evaluations],
        "formulas": [space.describe(p) for p in programs],
    }
    table_rows = [
        ["compile once (program as data), hurdle env", f"{np.mean(once_seconds):.2f}" if once_seconds else "-", f"setup {setup:.1f} s once per worker"],
        ["  its CPU seconds", f"{np.mean(once_cpu):.2f}" if once_cpu else "-", f"setup {setup_cpu:.1f} s CPU"],
        ["  evaluate (every env reached, scored)", f"{evaluate_seconds:.2f}", "-"],
    ]
    if fresh:
        theirs, jit_seconds, rerun_seconds, updates_agree = [], [], [], []
        for program, row in zip(programs, rows):
            loss = exported_loss(space, program)
            harness = fresh_harness(space, evaluator.scorers[0], loss)
            make_loss = evaluator.make_loss_of(evaluator.arrays.form(row))
            updates_agree.append(same_update(one_update(make_loss, row, env), one_update(rlax_convention(loss), jnp.zeros(1), env)))
            t0 = time.perf_counter()
            theirs.append(harness.run(jnp.zeros(1))[0])
            jit_seconds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            harness.run(jnp.zeros(1))  # compiled already: the training alone
            rerun_seconds.append(time.perf_counter() - t0)
        print(f"one update's loss and gradient agree on both paths for {sum(updates_agree)} of {len(programs)} candidates")
        assert all(updates_agree), "the two paths compute different losses: the comparison would be meaningless"
        # the same runs, fused differently by XLA: rounding differs from the second update on, and the
        # chaos of RL training amplifies it, so only some runs end with the same return
        a = np.concatenate([o["mean_return"].ravel() for o in ours])
        b = np.concatenate([t["mean_return"].ravel() for t in theirs])
        same = np.isclose(a, b, rtol=1e-3) | (np.isnan(a) & np.isnan(b))
        print(f"{same.mean():.0%} of {same.size} training runs end with the same return (rtol 1e-3) on both paths")
        per_jit = float(np.mean(jit_seconds))
        table_rows.append(["export + jax.jit of a fresh DQN per candidate", f"{per_jit:.2f}", "-"])
        table_rows.append(["  its training alone (second call, compiled)", f"{np.mean(rerun_seconds):.2f}", "-"])
        result.update({"jit_per_candidate_s": per_jit, "jit_s": jit_seconds, "fresh_training_only_s": rerun_seconds, "speedup": per_jit / float(np.mean(once_seconds)),
                       "updates_agreeing": float(np.mean(updates_agree)), "runs_agreeing": float(same.mean()), "returns_compile_once": a.tolist(), "returns_fresh_jit": b.tolist(),
                       "peak_rss_mib_end": peak_rss_mib()})
    print(table(table_rows, ["method", "s / candidate", "one-off"]))
    if fresh:
        print(f"speed-up: {result['speedup']:.1f}x over {len(programs)} candidates")
    name = "rl_eval" if fresh else f"rl_eval_{args.config}_evaluator"  # the comparison keeps its own file
    result["other_runs"] = other_runs(name, args.label)
    save_json(name, result)
    if fresh:
        plot(name, result)


def update_cost_by_environment(names: list[str], seeds: int = 2) -> None:
    """One DQN update, interpreted (DQN as the program, the network outside the interpreter, as the
    evaluator compiles it) and hand-written, on each environment's observation size."""
    from evolve.search_spaces import rl_envs
    from evolve.search_spaces.rl_evaluator import program_rows

    space = PluginManager().make_space(SpaceSpec("rl-losses", {}))
    arrays = rl_loss_fn.LossArrays(space.vocabulary)
    dqn = program_rows(arrays.lower([space.known_loss("dqn")]))[0]
    forms = {form: rl_loss_fn.make_loss_of(space.vocabulary, form) for form in ("states", "no states")}
    hand_written = lambda q_apply: (lambda program, o, t, b: rl_loss_fn.dqn_loss(q_apply)(o, t, b))  # noqa: E731
    envs, rows = {}, []
    for name in names:
        env = rl_envs.make(name)
        # the losses agree before their costs are compared
        for make_loss in forms.values():
            assert same_update(one_update(make_loss, dqn, env), one_update(hand_written, jnp.zeros(1), env)), name
        ours = {form: update_cost(make_loss, dqn, env, seeds, updates=100, repeats=3) for form, make_loss in forms.items()}
        theirs = update_cost(hand_written, jnp.zeros(1), env, seeds, updates=100, repeats=3)
        envs[name] = {"obs_dim": env.obs_dim, "num_actions": env.num_actions, "interpreted": ours["states"],
                      "interpreted_no_states": ours["no states"], "hand_written": theirs,
                      "ratio": ours["states"]["update_cpu_us"] / theirs["update_cpu_us"],
                      "ratio_no_states": ours["no states"]["update_cpu_us"] / theirs["update_cpu_us"]}
        rows.append([name, env.obs_dim, f"{ours['states']['update_cpu_us']:.0f}", f"{ours['no states']['update_cpu_us']:.0f}",
                     f"{theirs['update_cpu_us']:.0f}", f"{envs[name]['ratio']:.1f}x", f"{envs[name]['ratio_no_states']:.1f}x"])
        print(rows[-1], flush=True)
    print(table(rows, ["environment", "observation", "interpreted us CPU", "no states", "hand-written us CPU", "ratio", "no states"]))
    result = {"seeds": seeds, "environments": envs}
    save_json("rl_eval_update_cost", result)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    dims = [envs[n]["obs_dim"] for n in names]
    ax.loglog(dims, [envs[n]["interpreted"]["update_cpu_us"] for n in names], "o-", label="interpreted (DQN as the program), states in the buffer")
    ax.loglog(dims, [envs[n]["interpreted_no_states"]["update_cpu_us"] for n in names], "^-", label="interpreted, placeholder states (no state ops)")
    ax.loglog(dims, [envs[n]["hand_written"]["update_cpu_us"] for n in names], "s--", label="hand-written DQN loss")
    for n, d in zip(names, dims):
        ax.annotate(n, (d, envs[n]["interpreted"]["update_cpu_us"]), fontsize=7)
    ax.set_xlabel("observation size (numbers)")
    ax.set_ylabel(f"CPU us per update ({seeds} seeds)")
    ax.set_title("One DQN update by observation size")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure_path("rl_eval_update_cost"), dpi=120)
    print(f"wrote {figure_path('rl_eval_update_cost')}")


def other_runs(name: str, label: str) -> dict:
    """The runs already in results/NAME.json under other labels than `label` (one unlabelled run
    from before labels existed is kept as "initial")."""
    path = os.path.join(RESULTS, f"{name}.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        previous = json.load(f)
    runs = previous.pop("other_runs", {})
    runs[previous.get("label", "initial")] = previous
    runs.pop(label, None)
    return runs


def plot(name: str, result: dict) -> None:
    """CPU seconds per candidate of every labelled run's compile-once path (wall-clock is noisy on a
    shared machine), and this run's fresh jit (wall-clock: its compilation is mostly one thread)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    runs = {**result["other_runs"], result["label"]: result}
    for label, run in runs.items():
        once = run.get("compile_once_cpu_s")
        if not once:
            continue
        per_update = run["update"]["interpreted"]["update_cpu_us"]
        ax.plot(np.arange(1, len(once) + 1), once, "o-", label=f"compiled once, loss as data, CPU s ({label}: {per_update:.0f} µs CPU per update)")
    per_jit = result["jit_s"]
    ax.plot(np.arange(1, len(per_jit) + 1), per_jit, "s--", color="gray", label=f"export + jax.jit of a fresh DQN per candidate, wall s ({result['label']})")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("candidate")
    ax.set_ylabel("seconds to train (hurdle env)")
    ax.set_title(f"RL-loss candidates ({result['config']}), {result['label']}: {result['speedup']:.1f}x faster (wall) compiled once")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(figure_path(name), dpi=120)
    print(f"wrote {figure_path(name)}")


if __name__ == "__main__":
    main()
