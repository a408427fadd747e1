"""The Executor contract and the serial (in-process) executor.

An executor takes work items (a ticket and a program) and hands back results as they complete. The
engine keeps `workers` items in flight. Items carry programs as data, so an executor on other
processes or machines (Ray) rebuilds its own copy of the space from the SpaceSpec and never receives
a pickled closure. Wherever evaluations run, the space's evaluator is built once (design.md 10.1) and
what it returns passes the evaluation boundary (evolve.boundary) before it leaves the worker.
"""

from __future__ import annotations

import abc
import dataclasses
import time
import traceback
from typing import Sequence

from evolve.boundary import checked_batch
from evolve.hookspecs import hookimpl
from evolve.plugin_manager import SpaceSpec
from evolve.program import Program
from evolve.space import Evaluation, Evaluator


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

    #: True where results arrive in the order evaluations finish elsewhere (other processes or
    #: machines), so a run is not reproducible step for step whatever the strategy does. A guided run
    #: on such an executor trains its predictor in the background unless its options say otherwise
    #: (`engine.prepare`): proposals then never wait for training.
    completes_out_of_order: bool = False

    @abc.abstractmethod
    def submit(self, items: Sequence[WorkItem]) -> None:
        """Start evaluating these items (never blocks on their results)."""

    @abc.abstractmethod
    def results(self) -> list[WorkResult]:
        """The results completed since the last call; blocks until at least one is ready when any
        item is in flight."""

    def shutdown(self) -> None:
        """Release workers; in-flight items are abandoned (the store still lists them as pending)."""


def evaluate_safely(evaluator: Evaluator, programs: Sequence[Program]) -> list[Evaluation]:
    """`evaluator.evaluate`, checked at the boundary, with exceptions turned into failed Evaluations:
    a batch that raises is evaluated again one program at a time, so one bad program cannot fail its
    neighbours."""
    try:
        return checked_batch(programs, evaluator.evaluate(programs))
    except Exception:
        if len(programs) == 1:
            return [_failure_from_exception()]
    out = []
    for program in programs:
        try:
            out.extend(checked_batch([program], evaluator.evaluate([program])))
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
        """workers: programs in flight at once, evaluated together as one batch."""
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.evaluator = space_spec.build().evaluator  # built here, once: this process evaluates
        self._queue: list[WorkItem] = []

    def submit(self, items: Sequence[WorkItem]) -> None:
        self._queue.extend(items)

    def results(self) -> list[WorkResult]:
        batch, self._queue = self._queue, []
        if not batch:
            return []
        start = time.perf_counter()
        evaluations = evaluate_safely(self.evaluator, [item.program for item in batch])
        seconds = (time.perf_counter() - start) / len(batch)
        return [WorkResult(item.ticket, ev, seconds) for item, ev in zip(batch, evaluations)]


@hookimpl
def evolve_executors():
    return {"serial": SerialExecutor}
