"""The Executor contract and the serial (in-process) executor.

An executor takes work items (a ticket and a program) and hands back results as they complete. The
engine keeps `workers` items in flight. Items carry programs as data, so an executor on other
processes or machines (Ray) rebuilds its own copy of the space from the SpaceSpec and never receives
a pickled closure.
"""

from __future__ import annotations

import abc
import dataclasses
import time
import traceback
from typing import Sequence

from evolve.hookspecs import hookimpl
from evolve.plugin_manager import SpaceSpec, build_space
from evolve.program import Program
from evolve.space import Evaluation


@dataclasses.dataclass(frozen=True)
class WorkItem:
    ticket: int
    program: Program


@dataclasses.dataclass(frozen=True)
class WorkResult:
    """seconds: wall time of the evaluation attributed to this item."""

    ticket: int
    evaluation: Evaluation
    seconds: float


class Executor(abc.ABC):
    """Constructed as `cls(space_spec, workers=W, **options)`."""

    @abc.abstractmethod
    def submit(self, items: Sequence[WorkItem]) -> None:
        """Start evaluating these items (never blocks on their results)."""

    @abc.abstractmethod
    def results(self) -> list[WorkResult]:
        """The results completed since the last call; blocks until at least one is ready when any
        item is in flight."""

    def shutdown(self) -> None:
        """Release workers; in-flight items are abandoned (the store still lists them as pending)."""


def evaluate_safely(space, programs: Sequence[Program]) -> list[Evaluation]:
    """`space.evaluate`, with failures turned into failed Evaluations: a batch that raises is
    evaluated again one program at a time, so one bad program cannot fail its neighbours."""
    try:
        evaluations = space.evaluate(programs)
        if len(evaluations) != len(programs):
            raise RuntimeError(f"space returned {len(evaluations)} evaluations for {len(programs)} programs")
        return list(evaluations)
    except Exception:
        if len(programs) == 1:
            return [_failure_from_exception()]
    out = []
    for program in programs:
        try:
            out.extend(space.evaluate([program]))
        except Exception:
            out.append(_failure_from_exception())
    return out


def _failure_from_exception() -> Evaluation:
    lines = traceback.format_exc().strip().splitlines()
    return Evaluation.failure(f"exception: {lines[-1]}")


class SerialExecutor(Executor):
    """Evaluates in this process. Everything in flight (up to `workers` items) is evaluated as one
    batch by the space, which is where a compiled, vmapped evaluator pays off."""

    def __init__(self, space_spec: SpaceSpec, workers: int = 16):
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.space = build_space(space_spec)
        self._queue: list[WorkItem] = []

    def submit(self, items: Sequence[WorkItem]) -> None:
        self._queue.extend(items)

    def results(self) -> list[WorkResult]:
        batch, self._queue = self._queue, []
        if not batch:
            return []
        start = time.perf_counter()
        evaluations = evaluate_safely(self.space, [item.program for item in batch])
        seconds = (time.perf_counter() - start) / len(batch)
        return [WorkResult(item.ticket, ev, seconds) for item, ev in zip(batch, evaluations)]


@hookimpl
def evolve_executors():
    return {"serial": SerialExecutor}
