"""Writes mutation_golden.json.gz: what `mutation.random_program` and `mutation.mutate` produce, and
how far they advance the numpy Generator, for the vocabularies of the built-in spaces.

Published searches depend on these exact programs: a change in how the mutations draw random
numbers moves every figure. The file was written with the code as it was before typed values with
shapes (design.md section 10.2); tests/test_mutation.py replays it with the current code.

    PYTHONPATH=<old evolve package> python tests/golden/make_mutation_golden.py
"""

from __future__ import annotations

import gzip
import json
import os

import numpy as np

from evolve import mutation
from evolve.ops import Input, Vocabulary, elementwise_ops
from evolve.search_spaces import optimizer_programs

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mutation_golden.json.gz")
SR_OPERATORS = ("add", "sub", "mul", "div", "sin", "cos", "exp", "log")
SLEEP_OPERATORS = ("add", "sub", "mul", "sin", "cos")
RANDOM_PROGRAMS = 200
CHAIN = 1000


def vocabularies() -> dict[str, tuple[str, Vocabulary]]:
    """name -> (space, vocabulary), built as the built-in spaces build them."""

    def regression(n_vars: int, constants: bool) -> Vocabulary:
        return Vocabulary(
            inputs=tuple(Input(f"x{i + 1}", "real") for i in range(n_vars)),
            output_types=("real",),
            ops=elementwise_ops(SR_OPERATORS, "real"),
            max_nodes=32,
            const_type="real" if constants else None,
        )

    return {
        "nguyen-1": ("symbolic-regression", regression(1, False)),
        "nguyen-9": ("symbolic-regression", regression(2, False)),
        "csv-constants": ("symbolic-regression", regression(3, True)),
        "sleep": ("sleep", Vocabulary((Input("x", "real"),), ("real",), elementwise_ops(SLEEP_OPERATORS, "real"), 16)),
        "optimizers": ("optimizers", optimizer_programs.vocabulary()),
    }


def record(program) -> dict:
    data = program.to_dict()
    return {"nodes": data["nodes"], "outputs": data["outputs"], "digest": program.digest}


def cases() -> list[dict]:
    out = []
    for seed, (name, (space, vocab)) in enumerate(vocabularies().items()):
        # random programs, then one mutation of each (many different parents)
        rng = np.random.default_rng(seed)
        randoms = [mutation.random_program(vocab, space, rng) for _ in range(RANDOM_PROGRAMS)]
        children = [mutation.mutate(p, vocab, rng) for p in randoms]
        out.append({"name": name, "kind": "random+each", "seed": seed, "start": None,
                    "programs": [record(p) for p in randoms + children], "next_draw": int(rng.integers(2**62))})
        # a long chain, each child the parent of the next
        starts = optimizer_programs.SEEDS if name == "optimizers" else {"random": None}
        for start_name, start in starts.items():
            rng = np.random.default_rng(1000 + seed)
            program = start() if start else mutation.random_program(vocab, space, rng)
            chain = [program]
            for _ in range(CHAIN):
                program = mutation.mutate(program, vocab, rng)
                chain.append(program)
            out.append({"name": name, "kind": "chain", "seed": 1000 + seed, "start": start_name,
                        "programs": [record(p) for p in chain], "next_draw": int(rng.integers(2**62))})
    return out


def main() -> None:
    with gzip.open(PATH, "wt") as f:
        json.dump({"random_programs": RANDOM_PROGRAMS, "chain": CHAIN, "cases": cases()}, f, separators=(",", ":"))
    print(f"wrote {PATH} ({os.path.getsize(PATH) / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
