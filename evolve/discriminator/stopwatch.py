"""Seconds spent per named section, so a run can say where its predictor's time goes.

A section inside another is charged to itself only (encoding inside a training step counts as
encoding, not twice). One stopwatch serves one thread at a time: the predictor keeps one for the
proposal path and one for training, which may run on a thread of its own.
"""

from __future__ import annotations

import contextlib
import time
from typing import Iterator


class Stopwatch:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._open: list[list] = []  # [name, start, seconds of sections nested inside]

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        frame = [name, time.perf_counter(), 0.0]
        self._open.append(frame)
        try:
            yield
        finally:
            self._open.pop()
            elapsed = time.perf_counter() - frame[1]
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed - frame[2]
            if self._open:
                self._open[-1][2] += elapsed

    def __getitem__(self, name: str) -> float:
        return self.seconds.get(name, 0.0)

    def total(self) -> float:
        return sum(self.seconds.values())
