"""A search space for measuring executors: each evaluation waits `seconds`, then scores the program.

It stands in for an expensive evaluation that happens elsewhere (a remote training job), so it needs no
cores and a benchmark can tell the executor's cost from the evaluation's. It can also fail on demand,
the way real workers do, so the failure handling of executors can be tested for real:

* crash_rate: the fraction of programs (chosen by program digest, so always the same ones) whose
  evaluation makes the worker process exit: a poison program that kills every worker it reaches.
* crash_after: the worker process exits on its Nth evaluation: a transient death (OOM killer,
  preempted machine); a retry on a fresh worker succeeds.
* hang_rate: the fraction of programs whose evaluation never returns, for executors with a time limit.

Never set these with the serial executor: the "worker" is then the driver itself.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Sequence

from evolve import hookimpl
from evolve.errors import OptionError
from evolve.ops import Input, Vocabulary, elementwise_ops
from evolve.program import Program
from evolve.space import Evaluation, SearchSpace

OPERATORS = ("add", "sub", "mul", "sin", "cos")


class Sleep(SearchSpace):
    def __init__(
        self,
        seconds: float = 0.1,
        max_nodes: int = 16,
        crash_rate: float = 0.0,
        crash_after: int = 0,
        hang_rate: float = 0.0,
    ):
        """seconds: how long each evaluation waits. crash_after: 0 never crashes.
        max_nodes: the most nodes a program may have, its inputs included."""
        if seconds < 0:
            raise OptionError("seconds must be at least 0")
        for name, rate in (("crash_rate", crash_rate), ("hang_rate", hang_rate)):
            if not 0.0 <= rate <= 1.0:
                raise OptionError(f"{name} must be between 0 and 1")
        self.seconds = seconds
        self.crash_rate = crash_rate
        self.crash_after = crash_after
        self.hang_rate = hang_rate
        self.evaluations = 0  # in this process: what crash_after counts
        self._vocab = Vocabulary(
            inputs=(Input("x", "real"),), output_types=("real",), ops=elementwise_ops(OPERATORS, "real"),
            max_nodes=max_nodes,
        )

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        """One program after another, each waiting `seconds` (a batch costs its length times that)."""
        results = []
        for program in programs:
            self.evaluations += 1
            if self.crash_after and self.evaluations >= self.crash_after:
                os._exit(1)
            if _unit(program, 8) < self.crash_rate:
                os._exit(1)
            if _unit(program, 16) < self.hang_rate:
                threading.Event().wait()
            time.sleep(self.seconds)
            results.append(Evaluation(_unit(program, 0), {"nodes": len(program.pruned().nodes)}))
        return results


def _unit(program: Program, offset: int) -> float:
    """A number in [0, 1) fixed by the program's digest; different offsets give independent ones."""
    return int(program.digest[offset : offset + 8], 16) / 2**32


@hookimpl
def evolve_search_spaces():
    return {"sleep": Sleep}
