"""The replay buffer: the evaluated programs the discriminator learns from, with fitness and parent.

Plain numpy, kept apart from the network (training.py), so what only records or reads fitness (the
oracle predictor, `evolve plugins`) does not load JAX.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from evolve.program import Program

#: the fitness a failed evaluation is trained as (below any real fitness)
WORST = -1e30


@dataclasses.dataclass
class ReplayBuffer:
    """The last `capacity` evaluated programs, with fitness and parent id (-1: none).

    Training reads the columns as arrays many times between two additions, so `arrays()` builds them
    once per change rather than once per step."""

    capacity: int
    ids: list[int] = dataclasses.field(default_factory=list)
    parents: list[int] = dataclasses.field(default_factory=list)
    fitness: list[float] = dataclasses.field(default_factory=list)
    programs: list[Program] = dataclasses.field(default_factory=list)
    _arrays: "BufferArrays | None" = dataclasses.field(default=None, repr=False)

    def add(self, id_: int, parent: int | None, fitness: float, program: Program) -> None:
        self.ids.append(id_)
        self.parents.append(-1 if parent is None else parent)
        self.fitness.append(fitness if math.isfinite(fitness) else WORST)
        self.programs.append(program)
        if len(self.ids) > self.capacity:
            for column in (self.ids, self.parents, self.fitness, self.programs):
                del column[0]
        self._arrays = None

    def __len__(self) -> int:
        return len(self.ids)

    def arrays(self) -> "BufferArrays":
        if self._arrays is None:
            ids = np.asarray(self.ids, np.int64)
            self._arrays = BufferArrays(
                ids, np.asarray(self.parents, np.int64), np.asarray(self.fitness, np.float64),
                {int(id_): k for k, id_ in enumerate(ids)},
            )
        return self._arrays

    def sample(self, rng: np.random.Generator, m: int, recent: int) -> np.ndarray:
        """Up to m distinct buffer indices: half recent individuals and their parents, half uniform."""
        n = len(self.ids)
        if n <= m:
            return np.arange(n)
        chosen: dict[int, None] = {}
        window = np.arange(max(0, n - recent), n)
        position = self.arrays().position
        for k in rng.permutation(window):
            if len(chosen) >= m // 2:
                break
            chosen[int(k)] = None
            parent = position.get(self.parents[k])
            if parent is not None:
                chosen[parent] = None
        for k in rng.permutation(n):
            if len(chosen) >= m:
                break
            chosen[int(k)] = None
        return np.asarray(list(chosen)[:m])


class BufferArrays(NamedTuple):
    """The buffer's columns as arrays, and each id's position."""

    ids: np.ndarray
    parents: np.ndarray
    fitness: np.ndarray
    position: dict[int, int]
