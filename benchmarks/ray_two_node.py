"""A search of 2,000 evaluations on a real two-node Ray cluster, joined with `evolve run --address`.

Both nodes run on this machine (`ray start --head`, then `ray start --address=...`, 1 CPU each, through
evolve.local_cluster), so one actor of 1 CPU lands on each. Checks that every evaluation is in the
store exactly once and that the actors ran on both nodes.

    python benchmarks/ray_two_node.py [--budget 2000]

Writes results/ray_two_node.json.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import save_json  # noqa: E402

from evolve.local_cluster import LocalCluster  # noqa: E402
from evolve.store import Store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--problem", default="nguyen-4")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalCluster(head_cpus=1, node_cpus=(1,)) as cluster:
        db = os.path.join(tmp, "run.db")
        cmd = [sys.executable, "-m", "evolve.cli", "-v", "run", "symbolic-regression", "--problem", args.problem,
               "--executor", "ray", "--address", cluster.address, "--workers", "16", "--budget", str(args.budget),
               "--db", db]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=cluster.env)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"search failed:\n{done.stderr}")
        nodes = re.search(r"(\d+) Ray actors on (\d+) nodes", done.stderr)
        store = Store(db)
        evaluated, cached = store.counts(1)
        rows = store.db.execute("SELECT id, ticket FROM individuals WHERE run_id = 1 ORDER BY id").fetchall()
        tickets = [t for _, t in rows]
        checks = {
            "every evaluation of the budget is stored": evaluated == args.budget,
            "ids are 1..n with no gap": [i for i, _ in rows] == list(range(1, evaluated + cached + 1)),
            "no proposal recorded twice": len(set(tickets)) == len(tickets),
            "nothing left pending": store.pending(1) == [],
            "run finished": store.run(1).status == "finished",
            "actors on both nodes": nodes is not None and nodes.group(2) == "2",
        }
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    print(done.stdout.strip())
    print(f"{evaluated} evaluations (+{cached} from the duplicate cache) in {seconds:.1f} s on 2 nodes,"
          f" startup included")
    save_json("ray_two_node", {"budget": args.budget, "problem": args.problem, "evaluated": evaluated,
                               "cached": cached, "seconds": seconds, "checks": checks, "command": " ".join(cmd[1:])})
    if not all(checks.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
