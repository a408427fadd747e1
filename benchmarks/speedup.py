"""Speed-up of predictor-guided evolution over regularized evolution, at equal evaluation budgets.

For every registered search space (symbolic regression: one task per Nguyen problem) and every
strategy, run `--seeds` searches through the engine (serial executor, one worker, so each run is a
pure steady-state search) and report:

  (a) speed-up in evaluations: the target is the best fitness regularized evolution reaches at the end
      of its budget in the median seed; speed-up = median evaluations RE needs to reach it divided by
      the median the other strategy needs (a seed that never reaches it counts as never);
  (b) the same in wall-clock seconds, everything counted (evaluation, predictor training and
      inference, the engine itself);
  (c) final best fitness: median and a bootstrap 95% interval;
  (d) the discriminator's online accuracy (its call on child vs parent before it trained on the pair,
      near-ties skipped) per 100 evaluations, and its cost per proposal against one evaluation.
      The calls are on the children the strategy chose, nearly all called better, so this is close to
      the share of chosen children that beat their parent; `beat_parent` gives that share for every
      strategy (unguided ones included), and benchmarks/discriminator_quality.py the AUC on
      unselected children.

With `--stop-when-solved` (symbolic regression: exact recovery) every run also reports whether and
when it solved its problem, and each strategy gets a solve rate and the median evaluations to solve,
per problem and averaged over the suite (`--problems all`: Nguyen-1..12).

Writes benchmarks/results/speedup.json and speedup.png (best fitness against evaluations, median and
quartiles per strategy; the predictor's online accuracy; children the predictor was asked about
against real evaluations, the ratio the paper's reviewers asked for); with `--stop-when-solved` and
several problems also speedup_suite.png, the share of the suite's runs solved against evaluations
and against wall-clock seconds. `--resume --summarize-only` reports what an unfinished benchmark has. Run it niced:
`nice -n 10 python benchmarks/speedup.py`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

from common import key_value_options
from evolve.discriminator.training import WORST
from evolve.engine import start_run
from evolve.plugin_manager import PluginManager
from evolve.store import RunConfig, Store

#: name -> (strategy, its options, predictor, predictor options); population and tournament come per space
STRATEGIES = {
    "re": ("regularized-evolution", {}, None, {}),
    # RE with PAM-RT's novelty filter and try budget, no predictor: the filter's share of the speed-up
    "novelty-re": ("novelty-re", {}, None, {}),
    "pam-rt": ("pam-rt", {}, "binary", {}),
    # when no child is accepted, the first parent's best-liked child instead of any parent's
    "pam-rt-first-parent": ("pam-rt", {"fallback": "first-parent"}, "binary", {}),
    "predictor-filter": ("predictor-filter", {}, "binary", {}),
    "regression": ("pam-rt", {}, "regression", {}),
    "oracle-10%": ("pam-rt", {}, "oracle", {"error_rate": 0.1}),
}
#: per space: evaluation budget, population, tournament, and the tasks (space options) to run
SPACE_DEFAULTS = {
    # 3,000 evaluations: at 1,000 the warm-up and RE's lucky early seeds dominate the comparison
    "symbolic-regression": {
        "budget": 3000, "population_size": 100, "tournament_size": 10,
        "tasks": [{"problem": p} for p in ("nguyen-4", "nguyen-5", "nguyen-6", "nguyen-7")],
    },
    # ~0.3 s per evaluation on 2 cores: a small budget, pass --budget for more
    "optimizers": {"budget": 150, "population_size": 20, "tournament_size": 4, "tasks": [{"steps": 30}]},
    # fitness is a hash of the program: nothing to learn, the control where no predictor may help
    "sleep": {"budget": 300, "population_size": 50, "tournament_size": 5, "tasks": [{"seconds": 0.0}]},
    # the official NAS-Bench-101 baseline's population and tournament, and the 150 queries of the
    # published comparisons (RE 6.11% test error, BANANAS 5.92%); the trained evaluator, ~5.5 s per
    # cell on 2 cores; the predictor starts guiding after the 50 random cells of the population
    "nas-cells": {"budget": 150, "population_size": 50, "tournament_size": 10, "tasks": [{"evaluator": "trained"}],
                  "predictor_options": {"warmup": 50}},
    # the cheap configuration (CartPole, ~12 s per candidate); population and tournament of rl_search.py
    "rl-losses": {"budget": 300, "population_size": 20, "tournament_size": 5, "tasks": [{"config": "cheap"}]},
}
OTHER_SPACES = {"budget": 300, "population_size": 50, "tournament_size": 5, "tasks": [{}]}
TIE = 1e-6
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def run_once(space: str, options: dict, strategy: str, budget: int, population: int, tournament: int, seed: int,
             stop_when_solved: bool = False, space_predictor_options: dict | None = None) -> dict:
    """One search; its best-so-far curve, clocks, the predictor's calls on each child and, when the
    space says so, the evaluations it took to solve the problem. `space_predictor_options` are the
    space's own settings for a learned predictor (SPACE_DEFAULTS), under the strategy's."""
    name, strategy_options, predictor, predictor_options = STRATEGIES[strategy]
    if predictor in ("binary", "regression"):
        predictor_options = {**(space_predictor_options or {}), **predictor_options}
    store = Store(":memory:")
    config = RunConfig(
        space, options, name, {**strategy_options, "population_size": population, "tournament_size": tournament},
        predictor, dict(predictor_options, seed=seed) if predictor else {}, "serial", {}, 1, budget, seed,
        stop_when_solved,
    )
    start = time.time()
    engine = start_run(store, config)
    engine.execute()
    individuals = store.individuals(engine.run.id)
    stamps = dict(store.db.execute("SELECT id, recorded FROM individuals WHERE run_id = ?", (engine.run.id,)).fetchall())
    fitness = {ind.id: ind.fitness for ind in individuals}
    best, curve, clock, calls = -math.inf, [], [], []
    predictor_seconds, train_seconds, tries, queries, solved_at = 0.0, 0.0, [], [], None
    children, beat_parent = 0, 0
    for ind in individuals:
        best = max(best, ind.fitness)
        info = ind.proposal
        predictor_seconds += info.get("predictor_seconds", 0.0)
        train_seconds = max(train_seconds, info.get("train_seconds", 0.0))
        if ind.cached:
            continue
        curve.append(best)
        clock.append(stamps[ind.id] - start)
        queries.append((queries[-1] if queries else 0) + (info.get("tries", 0) if info.get("guided") else 0))
        if solved_at is None and ind.evaluation.metrics.get("solved"):
            solved_at = len(curve)
        if ind.parent is None:
            continue
        gap = max(ind.fitness, WORST) - max(fitness[ind.parent], WORST)
        children += 1
        beat_parent += gap > TIE
        if "predicted" in info:
            tries.append(info["tries"])
            if abs(gap) > TIE:
                calls.append((len(curve), bool((info["predicted"] > 0.5) == (gap > 0))))
    champion = max((ind for ind in individuals if not ind.cached), key=lambda ind: ind.fitness, default=None)
    return {
        "curve": curve, "clock": clock, "calls": calls, "tries": tries, "queries": queries, "solved_at": solved_at,
        # the best program itself, so a finding can be verified later (held-out suites, export)
        # without running the search again
        "best_program": json.loads(champion.program.to_json()) if champion else None,
        "beat_parent": beat_parent / children if children else None,
        "evaluation_seconds": sum(ind.seconds for ind in individuals),
        "predictor_seconds": predictor_seconds + train_seconds, "train_seconds": train_seconds,
        "wall_seconds": time.time() - start, "cached": sum(ind.cached for ind in individuals),
    }


def run_all(jobs: list[tuple], processes: int):
    """Yield (job, result) for every run_once(*job), in `processes` spawned processes (JAX does not
    survive a fork). Each run is one process's only work at a time, so its wall-clock is its own,
    but runs at once share the machine: compare wall-clock within one --jobs setting."""
    if processes <= 1:
        for job in jobs:
            yield job, run_once(*job)
        return
    import concurrent.futures
    import multiprocessing

    with concurrent.futures.ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_once, *job): job for job in jobs}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()


def first_reach(curve: list[float], target: float) -> int | None:
    """Evaluations spent when the best fitness first reached the target (None: never)."""
    for k, f in enumerate(curve):
        if f >= target - 1e-12:
            return k + 1
    return None


def median_or_none(values: list) -> float | None:
    """The median, where a None (never reached) counts as larger than everything."""
    ordered = sorted(values, key=lambda v: math.inf if v is None else v)
    mid = ordered[(len(ordered) - 1) // 2]
    return None if mid is None else float(mid)


def bootstrap_ci(values: list[float], rng: np.random.Generator, n: int = 2000) -> tuple[float, float]:
    v = np.asarray(values)
    medians = np.median(rng.choice(v, size=(n, len(v))), axis=1)
    return float(np.quantile(medians, 0.025)), float(np.quantile(medians, 0.975))


def summarize(runs: dict[str, list[dict]], budget: int) -> dict:
    re_finals = sorted(r["curve"][-1] for r in runs["re"])
    target = re_finals[(len(re_finals) - 1) // 2]  # an actual seed's final fitness (the lower median)
    rng = np.random.default_rng(0)
    out = {"target": target, "strategies": {}}
    re_evals = median_or_none([first_reach(r["curve"], target) for r in runs["re"]])
    re_secs = median_or_none([_seconds_to(r, target) for r in runs["re"]])
    for name, group in runs.items():
        evals = [first_reach(r["curve"], target) for r in group]
        secs = [_seconds_to(r, target) for r in group]
        finals = [r["curve"][-1] for r in group]
        calls = [c for r in group for c in r["calls"]]
        proposals = sum(len(r["curve"]) for r in group)
        eval_seconds = sum(r["evaluation_seconds"] for r in group)
        pred_seconds = sum(r["predictor_seconds"] for r in group)
        m_evals, m_secs = median_or_none(evals), median_or_none(secs)
        out["strategies"][name] = {
            "evaluations_to_target": evals,
            "median_evaluations_to_target": m_evals,
            "speedup_evaluations": _ratio(re_evals, m_evals, budget),
            "median_seconds_to_target": m_secs,
            "speedup_wall_clock": _ratio(re_secs, m_secs, None),
            "final_best_median": float(np.median(finals)),
            "final_best_ci95": bootstrap_ci(finals, rng),
            # on the children a guided strategy chose to evaluate, not on random ones: it called nearly
            # all of them better, so this is mostly the share that really were (see beat_parent)
            "online_accuracy": float(np.mean([ok for _, ok in calls])) if calls else None,
            "online_accuracy_per_100": _binned(calls, budget),
            # the share of evaluated children that beat their parent, comparable across strategies
            "beat_parent": (float(np.mean([r["beat_parent"] for r in group]))
                            if all(r.get("beat_parent") is not None for r in group) else None),
            "mean_tries": float(np.mean([t for r in group for t in r["tries"]])) if any(r["tries"] for r in group) else None,
            "predictor_seconds_per_proposal": pred_seconds / max(proposals, 1),
            "evaluation_seconds_per_evaluation": eval_seconds / max(proposals, 1),
            "predictor_to_evaluation_cost": pred_seconds / eval_seconds if eval_seconds else None,
            "wall_seconds_median": float(np.median([r["wall_seconds"] for r in group])),
            "cached_median": float(np.median([r["cached"] for r in group])),
            "solve_rate": float(np.mean([r["solved_at"] is not None for r in group])),
            "evaluations_to_solve": [r["solved_at"] for r in group],
            "seconds_to_solve": [None if r["solved_at"] is None else r["clock"][r["solved_at"] - 1] for r in group],
            "median_evaluations_to_solve": median_or_none([r["solved_at"] for r in group]),
            "predictor_queries_per_evaluation": (sum(r["queries"][-1] for r in group if r["queries"])
                                                 / max(proposals, 1)),
        }
    return out


#: where the suite's share of runs solved is read off, in evaluations and in wall-clock seconds
SOLVED_BY_EVALUATIONS = (100, 300, 1000, 3000, 10000, 20000)
SOLVED_BY_SECONDS = (1, 10, 60, 300, 1000)


def suite_summary(tasks: dict) -> dict:
    """Per strategy, over every task of the suite: mean solve rate, problems solved by the median
    seed, the mean of the per-problem median evaluations to solve (over problems where it is
    finite: each strategy over its own problems, so it does not rank strategies alone), the median
    wall-clock seconds per run, and the share of all runs (every problem, every seed) solved within
    a number of evaluations and within a number of seconds, predictor counted: one curve per
    strategy over the whole suite, the way solver benchmarks compare (COCO's runtime ECDFs)."""
    out = {}
    strategies = {s for t in tasks.values() for s in t["summary"]["strategies"]}
    for s in sorted(strategies):
        rows = [t["summary"]["strategies"][s] for t in tasks.values() if s in t["summary"]["strategies"]]
        medians = [r["median_evaluations_to_solve"] for r in rows]
        evaluations = [e for r in rows for e in r["evaluations_to_solve"]]
        seconds = [t for r in rows for t in r.get("seconds_to_solve", [])]
        out[s] = {
            "runs": len(evaluations),
            "solved_by_evaluations": {k: _share_within(evaluations, k) for k in SOLVED_BY_EVALUATIONS},
            "solved_by_seconds": ({k: _share_within(seconds, k) for k in SOLVED_BY_SECONDS}
                                  if len(seconds) == len(evaluations) else None),
            "problems": len(rows),
            "mean_solve_rate": float(np.mean([r["solve_rate"] for r in rows])),
            "problems_solved_by_median_seed": sum(m is not None for m in medians),
            "mean_median_evaluations_to_solve": (float(np.mean([m for m in medians if m is not None]))
                                                 if any(m is not None for m in medians) else None),
            "median_wall_seconds_per_run": float(np.median([r["wall_seconds_median"] for r in rows])),
            "mean_predictor_to_evaluation_cost": (float(np.mean([r["predictor_to_evaluation_cost"] for r in rows]))
                                                  if all(r["predictor_to_evaluation_cost"] is not None for r in rows)
                                                  else None),
        }
    return out


def _share_within(costs: list, limit: float) -> float:
    """The share of runs solved at a cost (evaluations, seconds) of at most `limit`; None: unsolved."""
    return float(np.mean([c is not None and c <= limit for c in costs])) if costs else 0.0


def _seconds_to(run: dict, target: float) -> float | None:
    k = first_reach(run["curve"], target)
    return None if k is None else run["clock"][k - 1]


def _ratio(reference: float | None, value: float | None, budget: int | None):
    """reference / value; a value of None (never reached) gives a bound, '< reference/budget'."""
    if reference is None:
        return None
    if value is None:
        return f"< {reference / budget:.3g}" if budget else None
    return reference / value


def _binned(calls: list[tuple[int, bool]], budget: int, width: int = 100) -> list[float | None]:
    bins: list[list[bool]] = [[] for _ in range(math.ceil(budget / width))]
    for k, ok in calls:
        bins[min((k - 1) // width, len(bins) - 1)].append(ok)
    return [float(np.mean(b)) if b else None for b in bins]


def plot(results: dict, path: str) -> None:
    """Top row: best fitness against evaluations (median, quartiles; a run that stopped when solved
    keeps its last value). Middle row: the predictor's online accuracy per 100 evaluations. Bottom
    row: children the predictor was asked about against real evaluations (median run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"])
    fig, axes = plt.subplots(3, len(tasks), figsize=(5 * len(tasks), 10), squeeze=False)
    for column, task in enumerate(tasks):
        top, bottom, queries = axes[0][column], axes[1][column], axes[2][column]
        for k, (name, curves) in enumerate(results["tasks"][task]["curves"].items()):
            color = f"C{k}"
            length = max(len(c) for c in curves)
            c = np.array([c + [c[-1]] * (length - len(c)) for c in curves])
            x = np.arange(1, length + 1)
            top.plot(x, np.median(c, axis=0), color=color, label=name)
            top.fill_between(x, np.quantile(c, 0.25, axis=0), np.quantile(c, 0.75, axis=0), color=color, alpha=0.2)
            accuracy = results["tasks"][task]["summary"]["strategies"][name]["online_accuracy_per_100"]
            if any(a is not None for a in accuracy):
                bins = 100 * np.arange(len(accuracy)) + 50
                bottom.plot(bins, [np.nan if a is None else a for a in accuracy], color=color, marker=".", label=name)
            asked = [q for q in results["tasks"][task].get("queries", {}).get(name, []) if q and q[-1]]
            if asked:
                median_run = sorted(asked, key=lambda q: q[-1])[(len(asked) - 1) // 2]
                queries.plot(np.arange(1, len(median_run) + 1), median_run, color=color, label=name)
        top.axhline(results["tasks"][task]["summary"]["target"], color="gray", ls=":", lw=1)
        top.set_title(task)
        top.set_xlabel("evaluations")
        top.set_ylabel("best fitness")
        top.legend(fontsize=8)
        bottom.axhline(0.5, color="gray", ls=":", lw=1)
        bottom.set_xlabel("evaluations")
        bottom.set_ylabel("online accuracy (child vs parent)")
        bottom.set_ylim(0, 1)
        bottom.legend(fontsize=8)
        queries.set_xlabel("real evaluations")
        queries.set_ylabel("children asked of the predictor")
        if queries.lines:
            queries.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def plot_suite(results: dict, path: str) -> None:
    """The share of all the suite's runs solved against evaluations (left) and against wall-clock
    seconds, predictor counted (right), one curve per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    tasks = results["tasks"].values()
    strategies = next(iter(tasks))["summary"]["strategies"]
    ends = {"evaluations_to_solve": max(t["budget"] for t in tasks),  # where each curve is drawn to
            "seconds_to_solve": max(r["wall_seconds_median"] for t in tasks for r in t["summary"]["strategies"].values())}
    for k, name in enumerate(strategies):
        rows = [t["summary"]["strategies"][name] for t in tasks]
        for ax, key in zip(axes, ends):
            costs = [c for r in rows for c in r.get(key, [])]
            solved = sorted(c for c in costs if c is not None)
            if costs:
                shares = np.arange(len(solved) + 1) / len(costs)
                ax.step([0.1 if key == "seconds_to_solve" else 1, *solved, max(ends[key], *solved)], [*shares, shares[-1]],
                        where="post", color=f"C{k}", label=f"{name} ({len(solved)}/{len(costs)})")
    for ax, label in zip(axes, ("evaluations", "wall-clock seconds (predictor counted)")):
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("share of runs solved")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=8)
    fig.suptitle(f"{len(results['tasks'])} problems x {results['seeds']} seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _finished_runs(path: str) -> dict[tuple, dict]:
    """The runs an earlier sitting appended to `path`, by (task, strategy, seed, budget); a run's budget
    is recorded with it (older lines: the length of its curve, one point per real evaluation)."""
    finished = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                r = json.loads(line)
                budget = r.get("budget", len(r["curve"]))
                finished[(r["task"], r["strategy"], r["seed"], budget)] = r
    return finished


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, help="evaluations per run (default: per space)")
    parser.add_argument("--spaces", nargs="*", help="search spaces (default: every registered one)")
    parser.add_argument("--problems", nargs="*",
                        help="symbolic-regression problems (default: nguyen-4..7; 'all': nguyen-1..12)")
    parser.add_argument("--stop-when-solved", action="store_true",
                        help="end a run when it solves its problem, and report solve rates")
    parser.add_argument("--strategies", nargs="*", default=list(STRATEGIES), choices=list(STRATEGIES))
    parser.add_argument("--space-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="a space option for every task (VALUE parsed as JSON where it can be)")
    parser.add_argument("--predictor-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of every learned predictor (binary, regression), over the space's; runs "
                             "with other predictor options belong in another --out (--resume keys ignore them)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--out", default=os.path.join(RESULTS, "speedup"))
    parser.add_argument("--resume", action="store_true",
                        help="reuse the runs already in OUT.runs.jsonl (same task, strategy, seed and budget) "
                             "instead of running them again: a benchmark spread over several sittings")
    parser.add_argument("--summarize-only", action="store_true",
                        help="with --resume: report the tasks whose runs are all in OUT.runs.jsonl and run nothing "
                             "(a benchmark still under way, or spread over several machines)")
    args = parser.parse_args()
    if args.summarize_only and not args.resume:
        parser.error("--summarize-only reads the runs of an earlier sitting: add --resume")
    finished = _finished_runs(args.out + ".runs.jsonl") if args.resume else {}
    strategies = ["re"] + [s for s in args.strategies if s != "re"]
    spaces = args.spaces or sorted(PluginManager().registry("search space"))
    results = {"measured": time.strftime("%Y-%m-%d %H:%M:%S"), "seeds": args.seeds, "jobs": args.jobs,
               "strategies": {s: STRATEGIES[s] for s in strategies}, "tasks": {}}
    for space in spaces:
        defaults = SPACE_DEFAULTS.get(space, OTHER_SPACES)
        budget = args.budget or defaults["budget"]
        tasks = defaults["tasks"]
        if space == "symbolic-regression" and args.problems:
            problems = [f"nguyen-{i}" for i in range(1, 13)] if args.problems == ["all"] else args.problems
            tasks = [{"problem": p} for p in problems]
        for options in tasks:
            options = {**options, **key_value_options(args.space_opt)}
            task = space + "".join(f" {v}" for v in options.values())
            jobs = [(space, options, strategy, budget, defaults["population_size"], defaults["tournament_size"], seed,
                     args.stop_when_solved, {**defaults.get("predictor_options", {}), **key_value_options(args.predictor_opt)})
                    for seed in range(args.seeds) for strategy in strategies]  # seed by seed: a run cut short keeps pairs
            runs: dict[str, list[dict]] = {strategy: [None] * args.seeds for strategy in strategies}
            for strategy in strategies:
                for seed in range(args.seeds):
                    runs[strategy][seed] = finished.get((task, strategy, seed, budget))
            jobs = [job for job in jobs if runs[job[2]][job[6]] is None]
            if args.summarize_only and jobs:
                print(f"{task}: {len(jobs)} of {len(strategies) * args.seeds} runs missing, left out", flush=True)
                continue
            for job, r in run_all(jobs, args.jobs):
                strategy, seed = job[2], job[6]
                runs[strategy][seed] = r
                with open(args.out + ".runs.jsonl", "a") as f:  # every run as it ends: a long benchmark cut short keeps them
                    f.write(json.dumps({"task": task, "strategy": strategy, "seed": seed, "budget": budget, **r}) + "\n")
                print(f"{task:<32} {strategy:<17} seed {seed:>2}: best {r['curve'][-1]:.4f}  {r['wall_seconds']:6.1f} s", flush=True)
            summary = summarize(runs, budget)
            results["tasks"][task] = {
                "budget": budget, "summary": summary,
                "curves": {s: [r["curve"] for r in group] for s, group in runs.items()},
                "queries": {s: [r["queries"] for r in group] for s, group in runs.items()},
            }
            results["suite"] = suite_summary(results["tasks"])
            for s, row in summary["strategies"].items():
                print(f"  {s:<17} speed-up {row['speedup_evaluations']}  wall {row['speedup_wall_clock']}  "
                      f"final {row['final_best_median']:.4f} {row['final_best_ci95']}  acc {row['online_accuracy']}"
                      f"  beat parent {row['beat_parent']}"
                      f"  solved {row['solve_rate']:.0%} (median at {row['median_evaluations_to_solve']})", flush=True)
            os.makedirs(os.path.dirname(args.out), exist_ok=True)
            with open(args.out + ".json", "w") as f:
                json.dump(results, f, separators=(",", ":"))  # compact: it holds every best-so-far curve
            plot(results, args.out + ".png")
    for s, row in results.get("suite", {}).items():
        print(f"suite {s:<17} {row}", flush=True)
    if len(results["tasks"]) > 1 and args.stop_when_solved:
        plot_suite(results, args.out + "_suite.png")


if __name__ == "__main__":
    main()
