"""How the Ray executor scales: whole searches (engine, store and all) on a local Ray.

1. Waiting evaluations: the `sleep` space waits T seconds per evaluation, the stand-in for an expensive
   remote evaluation that needs no cores here. With W workers the ideal throughput is W / T; the
   script reports measured / ideal for W = 1, 2, 4, 8, 16, 32 (one actor per worker, 0 CPUs each).
2. The driver's own cost per evaluation: wall time minus the time the driver sat blocked in
   ray.wait, per evaluation (everything the driver does: proposing, storing, sending, receiving);
   and the ceiling it sets, from the same search with T = 0.
3. CPU-bound: symbolic regression with 1 and 2 actors (1 CPU each) on this machine, as a ratio.

    python benchmarks/ray_scaling.py [--seconds 0.5] [--rounds 8] [--workers 1 2 4 8 16 32]

Writes results/ray_scaling.json and results/ray_scaling.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, save_json, table  # noqa: E402

from evolve.ray_executor import connect  # noqa: E402


class _WaitClock:
    """Adds up the time spent inside ray.wait (the driver idle, waiting for workers)."""

    def __init__(self, ray):
        self.ray, self.wait, self.seconds = ray, ray.wait, 0.0

    def __enter__(self):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self.wait(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        self.ray.wait = timed
        return self

    def __exit__(self, *exc):
        self.ray.wait = self.wait


def search(space: str, space_options: dict, budget: int, workers: int, executor_options: dict) -> dict:
    """One whole search on Ray; the clock starts once every actor has built its space."""
    import ray

    from evolve.engine import start_run
    from evolve.store import RunConfig, Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(os.path.join(tmp, "bench.db"))
        config = RunConfig(space, space_options, executor="ray", executor_options=executor_options,
                           workers=workers, budget=budget)
        engine = start_run(store, config)  # builds the executor: blocks until its actors are ready
        with _WaitClock(ray) as clock:
            start = time.perf_counter()
            reason = engine.execute()
            seconds = time.perf_counter() - start
        evaluated, cached = store.counts(engine.run.id)
        assert reason == "budget" and evaluated == budget and not store.pending(engine.run.id)
        errors = sum(i.evaluation.error is not None for i in store.individuals(engine.run.id))
    return {
        "workers": workers, "budget": budget, "seconds": seconds, "evaluations_per_second": evaluated / seconds,
        "cached": cached, "failed": errors,
        "driver_ms_per_evaluation": 1000 * (seconds - clock.seconds) / (evaluated + cached),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="T: how long each evaluation waits")
    parser.add_argument("--rounds", type=int, default=8, help="evaluations per worker in each search")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument("--sr-budget", type=int, default=3000, help="evaluations of each symbolic-regression search")
    args = parser.parse_args()
    connect()  # Ray first, before JAX starts in this process

    sleeping = []
    for w in args.workers:
        r = search("sleep", {"seconds": args.seconds}, args.rounds * w, w, {"actors": w, "cpus_per_actor": 0})
        r["ideal_per_second"] = w / args.seconds
        r["efficiency"] = r["evaluations_per_second"] / r["ideal_per_second"]
        sleeping.append(r)
        print(f"W={w}: {r['evaluations_per_second']:.2f}/s of ideal {r['ideal_per_second']:.2f}/s "
              f"({r['efficiency']:.3f}), driver {r['driver_ms_per_evaluation']:.2f} ms/eval", flush=True)
    w_max = max(args.workers)
    ceiling = search("sleep", {"seconds": 0.0}, 100 * w_max, w_max, {"actors": w_max, "cpus_per_actor": 0})
    print(f"T=0, W={w_max}: {ceiling['evaluations_per_second']:.0f} evaluations/s "
          f"(driver {ceiling['driver_ms_per_evaluation']:.2f} ms/eval)", flush=True)

    cpu = [search("symbolic-regression", {"problem": "nguyen-4"}, args.sr_budget, 16, {"actors": a, "cpus_per_actor": 1})
           for a in (1, 2)]
    for a, r in zip((1, 2), cpu):
        r["actors"] = a
    ratio = cpu[1]["evaluations_per_second"] / cpu[0]["evaluations_per_second"]

    print(table([[r["workers"], f"{r['evaluations_per_second']:.2f}", f"{r['ideal_per_second']:.2f}",
                  f"{r['efficiency']:.3f}", f"{r['driver_ms_per_evaluation']:.2f}"] for r in sleeping],
                ["W", "evals/s", "ideal W/T", "measured/ideal", "driver ms/eval"]))
    print(f"\nsymbolic regression (nguyen-4, 16 in flight): 1 actor {cpu[0]['evaluations_per_second']:.0f}/s, "
          f"2 actors {cpu[1]['evaluations_per_second']:.0f}/s: ratio {ratio:.2f} on {os.cpu_count()} cores")
    save_json("ray_scaling", {"seconds": args.seconds, "rounds": args.rounds, "sleep": sleeping,
                              "driver_ceiling": ceiling, "symbolic_regression": cpu, "cpu_ratio_2_vs_1": ratio})
    _plot(sleeping, args.seconds)


def _plot(rows: list[dict], seconds: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = [r["workers"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.loglog(w, [r["ideal_per_second"] for r in rows], "k--", label="ideal W/T")
    ax.loglog(w, [r["evaluations_per_second"] for r in rows], "o-", label="measured")
    ax.set_xlabel("workers W")
    ax.set_ylabel("evaluations / s")
    ax.set_title(f"Ray executor, evaluations of T = {seconds:g} s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(figure_path("ray_scaling"), dpi=120)
    print(f"wrote {figure_path('ray_scaling')}")


if __name__ == "__main__":
    main()
