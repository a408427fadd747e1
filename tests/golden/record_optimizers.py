"""Record the optimizers space's fitnesses as golden values, with the code as it was before the
space moved onto the shared training harness (evolve/harness.py).

Run once against that code (its package on PYTHONPATH); tests/test_optimizers.py checks that the
current code reproduces the cheap settings, and benchmarks/optimizer_eval.py --golden the default one.

    PYTHONPATH=/path/to/old/package python tests/golden/record_optimizers.py
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from evolve.plugin_manager import SpaceSpec, default_manager
from evolve.program import Node, Program
from evolve.search_spaces import optimizer_programs

SETTINGS = {
    "train-cheap": {"steps": 30, "seeds": 1},
    "heldout-cheap": {"suite": "heldout", "steps": 30, "seeds": 1},
    "train-default": {},
    "heldout-default": {"suite": "heldout"},
}
MUTANTS = 20


def programs(space) -> dict[str, Program]:
    """The four seeds, 20 seeds mutated 1-3 times (numpy seeds 0..19), and a program whose loss is non-finite."""
    named = {name: f() for name, f in optimizer_programs.SEEDS.items()}
    for k in range(MUTANTS):
        named[f"mutant-{k}"] = space.random_program(np.random.default_rng(k))
    nodes = [Node("input")] * 5 + [Node("const", (), 80.0), Node("exp", (5,)), Node("square", (6,))]
    named["non-finite"] = Program(tuple(nodes), (7, 2, 3), optimizer_programs.SPACE)
    return named


def main() -> None:
    out = {"settings": SETTINGS, "programs": {}, "fitness": {}, "fingerprints": {}}
    for setting, options in SETTINGS.items():
        space = default_manager().make_space(SpaceSpec("optimizers", options))
        if not out["programs"]:
            named = programs(space)
            out["programs"] = {name: p.to_dict() for name, p in named.items()}
            out["fingerprints"] = dict(zip(named, space.fingerprints(list(named.values()))))
        chosen = named if "cheap" in setting or setting == "train-default" else dict(list(named.items())[:8])
        evaluations = space.evaluate(list(chosen.values()))
        out["fitness"][setting] = {
            name: {"fitness": None if math.isinf(e.fitness) else e.fitness, "error": e.error}
            for name, e in zip(chosen, evaluations)
        }
        print(setting, {name: round(e.fitness, 4) for name, e in zip(chosen, evaluations)})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimizers.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
