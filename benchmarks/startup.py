"""Seconds the `evolve` command takes to start and answer: `--help`, `runs`, `plugins`, and `top` / `show`
on a stored optimizers run, each the fastest of a few fresh processes (what a user waits for, Python's
own start included). It also records which heavy libraries each command imported.

The small optimizers run it reads is made first, in a temporary directory, by the code under test.
Results are kept per label, so one file holds the figures before and after a change:

    python benchmarks/startup.py --label after
    python benchmarks/startup.py --label before --pythonpath /tmp/old_evolve/pkg   # an older tree
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS, figure_path, save_json, table  # noqa: E402

HEAVY = ("jax", "flax", "jraph", "optax", "ray", "sympy", "networkx", "tqdm", "numpy")
#: the `evolve` console script, plus a report of which heavy libraries the command imported
RUN_CLI = (
    "import atexit, json, sys\n"
    f"atexit.register(lambda: print('HEAVY' + json.dumps([m for m in {HEAVY!r} if m in sys.modules]), file=sys.stderr))\n"
    "from evolve.cli import main\n"
    "sys.exit(main())\n"
)
#: a run small enough to make in seconds, on the space whose `top` used to compile its training loop
STORED_RUN = ["run", "optimizers", "--budget", "10", "--workers", "1", "--seed", "0",
              "--space-opt", "steps=20", "--space-opt", "seeds=1"]


class Evolve:
    """The `evolve` command of one Python and one import path, run in fresh processes."""

    def __init__(self, python: str, pythonpath: str | None, workdir: str):
        self.python = python
        self.workdir = workdir  # never the checkout: `python -c` puts the working directory first on sys.path
        self.env = {**os.environ, "EVOLVE_PROGRESS": "0"}
        if pythonpath:
            self.env["PYTHONPATH"] = pythonpath
        else:
            self.env.pop("PYTHONPATH", None)

    def __call__(self, args: list[str]) -> tuple[float, list[str]]:
        """Seconds from process start to exit, and the heavy libraries the command imported."""
        start = time.perf_counter()
        done = subprocess.run([self.python, "-c", RUN_CLI, *args], cwd=self.workdir, env=self.env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"evolve {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        marker = [line for line in done.stderr.splitlines() if line.startswith("HEAVY")]
        return seconds, json.loads(marker[-1][len("HEAVY"):])


def measure(evolve: Evolve, db: str, run: int, repeats: int) -> dict:
    commands = {
        "--help": ["--help"],
        "runs": ["runs", "--db", db],
        "plugins": ["plugins"],
        "top": ["top", str(run), "--db", db],
        "show": ["show", str(run), "--db", db],
    }
    results = {}
    for name, args in commands.items():
        times, heavy = [], []
        for _ in range(repeats):
            seconds, heavy = evolve(args)
            times.append(seconds)
        results[name] = {"seconds": min(times), "all_seconds": times, "imported": heavy}
        print(f"  evolve {name:<8} {min(times):6.2f} s   imports: {', '.join(heavy) or '-'}", flush=True)
    return results


def make_stored_run(evolve: Evolve, db: str) -> tuple[int, float]:
    start = time.perf_counter()
    evolve([*STORED_RUN, "--db", db])
    seconds = time.perf_counter() - start
    import sqlite3

    with sqlite3.connect(db) as connection:
        (run,) = connection.execute("SELECT max(id) FROM runs").fetchone()
    return int(run), seconds


def merged(label: str, entry: dict) -> dict:
    """The results file with this label's entry replaced and the others kept."""
    path = os.path.join(RESULTS, "startup.json")
    labels = {}
    if os.path.exists(path):
        with open(path) as f:
            labels = json.load(f).get("labels", {})
    labels[label] = entry
    return {"labels": labels}


def plot(labels: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    commands = list(next(iter(labels.values()))["commands"])
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for k, (label, entry) in enumerate(labels.items()):
        xs = [i + (k - (len(labels) - 1) / 2) * width for i in range(len(commands))]
        ys = [entry["commands"][c]["seconds"] for c in commands]
        bars = ax.bar(xs, ys, width, label=label)
        ax.bar_label(bars, [f"{y:.2f}" for y in ys], fontsize=7)
    ax.axhline(0.5, color="k", ls="--", lw=1, label="0.5 s target (--help, runs)")
    ax.set_xticks(range(len(commands)), [f"evolve {c}" for c in commands])
    ax.set_ylabel("seconds (fastest of fresh processes)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(figure_path("startup"), dpi=120)
    print(f"wrote {figure_path('startup')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="the name these figures are kept under, e.g. before or after")
    parser.add_argument("--python", default=sys.executable, help="the Python whose `evolve` is measured")
    parser.add_argument("--pythonpath", help="put this first on the import path (to measure another tree)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per command (the fastest counts)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        evolve = Evolve(args.python, args.pythonpath, tmp)
        db = os.path.join(tmp, "startup.db")
        run, run_seconds = make_stored_run(evolve, db)
        print(f"{args.label}: stored optimizers run {run} made in {run_seconds:.1f} s ({' '.join(STORED_RUN)})")
        commands = measure(evolve, db, run, args.repeats)
    entry = {
        "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": args.python, "pythonpath": args.pythonpath, "repeats": args.repeats,
        "load_average_after": os.getloadavg()[0],  # the machine is shared: a high load inflates every figure
        "stored_run": " ".join(STORED_RUN), "commands": commands,
    }
    data = merged(args.label, entry)
    rows = [[f"evolve {c}", *(f"{e['commands'][c]['seconds']:.2f}" if c in e["commands"] else "-"
                              for e in data["labels"].values())] for c in commands]
    print(table(rows, ["command", *(f"{label} (s)" for label in data["labels"])]))
    save_json("startup", data)
    plot(data["labels"])


if __name__ == "__main__":
    main()
