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
    """The last `capacity` evaluated programs, with fitness and parent id (-1: none). `added` counts
    every program ever added, so a reader that mirrors the buffer can tell which ones are new.

    Training reads the columns as arrays many times between two additions, so `arrays()` builds them
    once per change rather than once per step."""

    capacity: int
    ids: list[int] = dataclasses.field(default_factory=list)
    parents: list[int] = dataclasses.field(default_factory=list)
    fitness: list[float] = dataclasses.field(default_factory=list)
    programs: list[Program] = dataclasses.field(default_factory=list)
    added: int = 0
    _arrays: "BufferArrays | None" = dataclasses.field(default=None, repr=False)

    def add(self, id_: int, parent: int | None, fitness: float, program: Program) -> None:
        self.ids.append(id_)
        self.parents.append(-1 if parent is None else parent)
        self.fitness.append(fitness if math.isfinite(fitness) else WORST)
        self.programs.append(program)
        self.added += 1
        if len(self.ids) > self.capacity:
            for column in (self.ids, self.parents, self.fitness, self.programs):
                del column[0]
        self._arrays = None

    def __len__(self) -> int:
        return len(self.ids)

    def arrays(self) -> "BufferArrays":
        if self._arrays is None:
            ids = np.asarray(self.ids, np.int64)
            parents = np.asarray(self.parents, np.int64)
            self._arrays = BufferArrays(ids, parents, np.asarray(self.fitness, np.float64), positions_of(ids, parents))
        return self._arrays

    def view(self) -> "BufferView":
        """What a training call reads, copied: it stays as it is while the buffer grows."""
        return BufferView(self.arrays(), list(self.programs), self.added)

    def sample(self, rng: np.random.Generator, m: int, recent: int) -> np.ndarray:
        return sample(self.arrays(), rng, m, recent)


class BufferArrays(NamedTuple):
    """The buffer's columns as arrays, and the buffer index of each entry's parent (-1: not in it)."""

    ids: np.ndarray
    parents: np.ndarray
    fitness: np.ndarray
    parent_position: np.ndarray


class BufferView(NamedTuple):
    arrays: BufferArrays
    programs: list[Program]
    added: int


def positions_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """The index in `ids` of each wanted id, -1 where it is absent."""
    order = np.argsort(ids, kind="stable")
    ranked = ids[order]
    at = np.clip(np.searchsorted(ranked, wanted), 0, max(len(ids) - 1, 0))
    found = ranked[at] == wanted if len(ids) else np.zeros(len(wanted), bool)
    return np.where(found, order[at] if len(ids) else -1, -1)


def sample(arrays: BufferArrays, rng: np.random.Generator, m: int, recent: int) -> np.ndarray:
    """Up to m distinct buffer indices: half recent individuals and their parents, half uniform."""
    n = len(arrays.ids)
    if n <= m:
        return np.arange(n)
    chosen: dict[int, None] = {}
    parent_position = arrays.parent_position
    for k in rng.permutation(np.arange(max(0, n - recent), n)):
        if len(chosen) >= m // 2:
            break
        chosen[int(k)] = None
        parent = int(parent_position[k])
        if parent >= 0:
            chosen[parent] = None
    for k in rng.permutation(n):  # iterated lazily: the loop stops after about m/2 items
        if len(chosen) >= m:
            break
        chosen[int(k)] = None
    return np.asarray(list(chosen)[:m], np.int64)
