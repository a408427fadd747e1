"""Peak memory of a guided run against regularized evolution on the same problem and budget (any space).

Each run is a whole search (engine, serial executor with the CLI's 16 evaluations in flight, a store
on disk, the strategies' and predictor's default options) in a process of its own, which reports its
peak resident set (`resource.getrusage(RUSAGE_SELF).ru_maxrss`), its resident set once the run is
built (the space's evaluator and JAX loaded, nothing searched yet) and, for PAM-RT, the predictor's
replay buffer and encoding cache sizes. Target (issue 12): PAM-RT's peak at most 1.5x RE's.

Before (Nguyen-4, seed 0, label "before"): RE peaked at 234 MB (1,500) and 236 MB (5,000), PAM-RT
at 1,018 MB (4.4x) and 1,100 MB (4.7x). Where it went (RSS after each phase of one run): JAX with
flax and optax about 210 MB (RE pays about as much: its interpreter is JAX), the built predictor 385
MB (the jitted init, of which malloc_trim gives back 85 MB); then every compilation: a training scan
of a new shape (6 in a 1,500-evaluation run: the 100-step warm-up, then 16-step calls in 5 layouts)
added 60-100 MB, an inference shape (23) 3-10 MB. At the end of a run, in one process: the training
executables held ~30 MB each, the inference ones ~6 MB each, other JAX caches ~50 MB, encodings ~10
MB; compiling a training scan with XLA's default (MLIR) emitters peaked ~270 MB above where it began
and left most of that in malloc's heaps, unused but not given back (evolve/discriminator/memory.py).

After (label "after": the predictor options of the before run, attention on and slow_down 0, load
9 on 2 cores): PAM-RT peaks at 689 MB (2.94x RE's 234) and 843 MB (3.56x RE's 236). What
changed: the discriminator's compilations use XLA's LLVM emitters and give back what they freed
(malloc_trim), the warm-up trains as calls of the regular 16 steps, and training batches keep their
largest layout so one training executable is kept (1 instead of ~6). Not the 1.5x target, and the
floor is above it: the built predictor alone is 300 MB (1.28x RE's whole peak: JAX, flax, optax,
the compiled init), one training executable is ~30 MB and compiling it ~100 MB for a moment
(~1.8x so far), and the inference shapes a run meets (about 20 here, ~6 MB each) are the rest:
fewer of them (a coarser ladder, or padding up to shapes already compiled as background training
does) is what is left to cut. The replay buffer and the encodings are bounded (buffer_size 5,000
programs, 4,096 cached encodings) and small: 3,400 more programs in the buffer cost the 5,000-
evaluation run 82 MB in all, before. Run times are not comparable between labels (RE took 10 s
after against 4 s before: the machine's load). With today's defaults (label "after, new defaults":
no attention, training spread out with slow_down 250) PAM-RT peaks at 585 MB (2.50x) and 714 MB
(3.02x).

Inference in 4 shapes (labels "inference in 3 shapes", then "inference in 4 shapes", today's
defaults): a PAM-RT run's 132 compare calls at 1,500 evaluations (median 281 pairs, 292 programs,
124 bins) compiled 15 shapes of their own; they are now padded up to, or split in chunks of, the
shapes of encoding.INFERENCE_SHAPES, with the same probabilities (bit-identical on 883 pairs). PAM-RT
peaks at 477 MB (2.03x RE's 234) at 1,500 evaluations and 548 MB (2.31x RE's 237) at 5,000
(label "inference in 4 shapes, 5000"; 585 and 714 MB before). Where the rest goes, measured in one run
(RSS after each phase, mallinfo2, /proc/self/smaps): JAX with its CPU backend, flax and optax 212
MB before anything is built (RE's whole peak is 234: its interpreter is JAX too); the built
predictor +35 MB (+78 MB for a moment while `init` compiles; 18 MB of it is JAX's caches of that
compilation); the first training compilation +65 MB (+120 for a moment); the 4 inference
executables 15-25 MB; the training layout growing from 16 to 32 bins compiles the training scan a
second time, and that compilation (+50 MB for a moment) sets the peak; Python objects 33 MB
(tracemalloc: encodings 10.5 MB, programs 4.6 MB, JAX's tracing 10 MB); and malloc holds 90-160 MB
free in its heaps in pieces too small to give back (fragmentation by the compilations: fewer
compilations, less of it). No XLA option tried made an executable smaller or a compilation's
transient lower (parallel codegen split 1, backend optimization level 1). Nor does the allocator's
arena count: with MALLOC_ARENA_MAX=1 in the environment PAM-RT peaked at 444 MB against RE's 232
(1.91x; label "MALLOC_ARENA_MAX=1"), within the noise of the 477 MB without it.

On Nguyen-4 the 1.5x target is below the floor: RE's whole peak is about JAX's own footprint, and a
predictor needs at least one training and a few inference compilations on top. Where evaluations
load models of their own, the predictor is a smaller share: on the optimizer space (seeded with
SGD, label "optimizers, 300") PAM-RT peaks at 503 MB against RE's 350 (1.44x).

    python benchmarks/predictor_memory.py [--problem nguyen-4] [--budgets 1500 5000] [--strategies re pam-rt]
    python benchmarks/predictor_memory.py --space optimizers --space-opt seed_with=sgd --budgets 300 --label "optimizers, 300"

Writes results/predictor_memory.json and results/predictor_memory.png.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import figure_path, key_value_options, save_json, table  # noqa: E402

STRATEGIES = {"re": "regularized-evolution", "novelty-re": "novelty-re", "pam-rt": "pam-rt"}


def resident_mb() -> float:
    """This process's resident set now, from /proc."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024


def child(strategy: str, space: str, space_options: dict, budget: int, seed: int, predictor_options: dict) -> dict:
    """One run in this process; what it measured, as a dict."""
    from evolve.engine import start_run
    from evolve.store import RunConfig, Store

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(os.path.join(tmp, "memory.db"))
        config = RunConfig(space, space_options, STRATEGIES[strategy],
                           predictor_options=predictor_options if strategy == "pam-rt" else {}, budget=budget, seed=seed)
        engine = start_run(store, config)
        built = resident_mb()
        start = time.perf_counter()
        engine.execute()
        seconds = time.perf_counter() - start
        evaluated, cached = store.counts(engine.run.id)
        out = {"strategy": strategy, "budget": budget, "evaluated": evaluated, "cached": cached, "seconds": seconds,
               "built_mb": built, "end_mb": resident_mb(),
               "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
        if engine.predictor is not None:
            from evolve.discriminator.model import trace_count

            predictor = engine.predictor
            out["buffer"] = len(predictor.buffer)
            out["buffer_capacity"] = predictor.buffer.capacity
            out["encoding_cache"] = len(predictor.encoder._cache)
            out["buffer_encodings"] = len(predictor.trainer._mirror)
            out["training_layout"] = list(predictor.trainer.layout)
            out["compilations"] = trace_count()
            out["inference_executables"] = predictor.trainer._score._cache_size()
            out["training_executables"] = predictor.trainer._train._cache_size()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="symbolic-regression")
    parser.add_argument("--space-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="the space's options (values as JSON where they parse)")
    parser.add_argument("--problem", default="nguyen-4", help="symbolic regression's problem (shorthand for --space-opt)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[1500, 5000])
    parser.add_argument("--strategies", nargs="+", default=["re", "pam-rt"], choices=list(STRATEGIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--predictor-opt", action="append", default=[], metavar="K=V",
                        help="options of PAM-RT's binary predictor (values as JSON)")
    parser.add_argument("--label", default="after", help="results are kept per label (e.g. before / after a change)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    predictor_options = {k: json.loads(v) for k, v in (kv.split("=", 1) for kv in args.predictor_opt)}
    space_options = key_value_options(args.space_opt)
    if args.space == "symbolic-regression":
        space_options.setdefault("problem", args.problem)
    if args.child:
        print(json.dumps(child(args.strategies[0], args.space, space_options, args.budgets[0], args.seed,
                               predictor_options)))
        return

    rows = []
    for budget in args.budgets:
        for strategy in args.strategies:
            cmd = [sys.executable, __file__, "--child", "--strategies", strategy, "--budgets", str(budget),
                   "--space", args.space, *[f"--space-opt={kv}" for kv in args.space_opt], "--problem", args.problem,
                   "--seed", str(args.seed), *[f"--predictor-opt={kv}" for kv in args.predictor_opt]]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(f"{strategy} at {budget}: peak {row['peak_mb']:.0f} MB (built {row['built_mb']:.0f} MB), "
                  f"{row['seconds']:.0f} s", flush=True)
    for budget in args.budgets:
        base = next((r for r in rows if r["budget"] == budget and r["strategy"] == "re"), None)
        for r in rows:
            if base is not None and r["budget"] == budget:
                r["peak_vs_re"] = r["peak_mb"] / base["peak_mb"]
    print(table([[r["strategy"], r["budget"], f"{r['built_mb']:.0f}", f"{r['peak_mb']:.0f}",
                  f"{r.get('peak_vs_re', float('nan')):.2f}", r.get("buffer", "-"), r.get("encoding_cache", "-")]
                 for r in rows], ["strategy", "budget", "built MB", "peak MB", "peak / RE", "buffer", "encoding cache"]))
    labels = _previous_labels()
    labels[args.label] = {"space": args.space, "space_options": space_options, "seed": args.seed, "predictor_options": predictor_options,
                          "measured": time.strftime("%Y-%m-%d %H:%M:%S"), "load_average": os.getloadavg(), "rows": rows}
    save_json("predictor_memory", {"labels": labels})
    _plot(labels)


def _previous_labels() -> dict:
    path = os.path.join(os.path.dirname(figure_path("predictor_memory")), "predictor_memory.json")
    try:
        with open(path) as f:
            return json.load(f).get("labels", {})
    except (OSError, ValueError):
        return {}


def _plot(labels: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5))
    bars, names = [], []
    for label, data in labels.items():
        for r in data["rows"]:
            names.append(f"{label}\n{r['strategy']} {r['budget']}")
            bars.append((r["built_mb"], r["peak_mb"]))
    x = range(len(bars))
    ax.bar(x, [p for _, p in bars], color="tab:orange", label="peak")
    ax.bar(x, [b for b, _ in bars], color="tab:blue", label="built (before the search)")
    ax.set_xticks(list(x), names, fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("resident memory, MB")
    ax.set_title("peak memory per run (serial)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure_path("predictor_memory"), dpi=120)
    print(f"wrote {figure_path('predictor_memory')}")


if __name__ == "__main__":
    main()
