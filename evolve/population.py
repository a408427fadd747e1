"""The aging population of regularized evolution, and tournament selection.

The population is the last P individuals recorded, in order: the oldest leaves when a new one enters,
whatever its fitness. That is all the state regularized evolution needs, and it is exactly what the
store can rebuild on resume.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

import numpy as np

from evolve.program import Program
from evolve.space import Evaluation


@dataclasses.dataclass(frozen=True)
class Individual:
    """An evaluated program as recorded in the store.

    id: its position in the run (1, 2, ...), the order it was recorded in.
    parent: the id of the individual it was mutated from, None for initial programs.
    cached: True when the duplicate cache answered instead of an evaluation.
    proposal: what the strategy did to make it (tries, predictor calls...), JSON-able.
    seconds: evaluation wall time attributed to it (0 when cached).
    """

    id: int
    program: Program
    evaluation: Evaluation
    parent: int | None = None
    cached: bool = False
    proposal: dict[str, Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0

    @property
    def fitness(self) -> float:
        return self.evaluation.fitness


class AgingPopulation:
    """The last `capacity` individuals. `in_flight` counts proposals not yet returned, so a strategy
    can tell whether initial programs are still owed."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError("population size must be at least 1")
        self.capacity = capacity
        self._members: list[Individual] = []  # oldest first; a list for O(1) random access
        self.in_flight = 0

    def add(self, individual: Individual) -> None:
        self._members.append(individual)
        if len(self._members) > self.capacity:
            del self._members[0]

    def __len__(self) -> int:
        return len(self._members)

    def __iter__(self) -> Iterator[Individual]:
        return iter(self._members)

    @property
    def full(self) -> bool:
        """True once initial programs are no longer needed (recorded + in flight fill it)."""
        return len(self._members) + self.in_flight >= self.capacity

    @property
    def initializing(self) -> bool:
        """True while initial programs are owed, or all of them are still in flight (nobody to select)."""
        return not self.full or not self._members

    def tournament(self, size: int, rng: np.random.Generator) -> Individual:
        """The fittest of `size` members drawn without replacement (ties: the younger wins)."""
        members = self._members
        picks = rng.choice(len(members), size=min(size, len(members)), replace=False)
        return members[max(picks, key=lambda i: (members[i].fitness, i))]

    def best(self) -> Individual:
        return max(self._members, key=lambda m: m.fitness)
