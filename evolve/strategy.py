"""The Strategy contract: how new programs are proposed from the population.

A strategy is constructed as `cls(space, **options)`, says how large a population it keeps
(`population_size`), proposes programs, observes what was evaluated, and recovers its state from a
stored run by replaying it (like PyGlove's `recover(history)`), so a resumed run proposes what the
uninterrupted one would have. Strategies that consult a
predictor (PAM-RT) report what they did in `Proposal.info` (tries, predictor calls), which the store
records with the individual.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Sequence

import numpy as np

from evolve.errors import PluginError
from evolve.population import AgingPopulation, Individual
from evolve.program import Program


@dataclasses.dataclass(frozen=True)
class Proposal:
    """A program to evaluate, the individual it came from (None for initial programs), and what the
    strategy did to make it (JSON-able)."""

    program: Program
    parent: int | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


class Strategy(abc.ABC):
    population_size: int = 1

    @abc.abstractmethod
    def propose(self, population: AgingPopulation, n: int, rng: np.random.Generator) -> list[Proposal]:
        """`n` programs to evaluate next."""

    def observe(self, individuals: Sequence[Individual]) -> None:
        """Called with every newly recorded individual (after it entered the population)."""

    def recover(self, history: Sequence[Individual], pending: Sequence[Program]) -> None:
        """Rebuild this strategy's state when a stored run resumes: `history` is every individual
        recorded so far, in order; `pending` the programs proposed but not yet recorded (they will
        be evaluated again). The default replays `observe` over the history, which is exact for a
        strategy whose only state is what it observed."""
        self.observe(history)


def initial_proposals(space, population: AgingPopulation, n: int, rng: np.random.Generator) -> list[Proposal]:
    """Programs to fill the population: the space's seeds first, then random programs. At most what
    the population still lacks; none while it waits for initial programs in flight."""
    seeds = space.seed_programs(rng)
    if not isinstance(seeds, (list, tuple)):
        raise PluginError(f"search space {space.name!r}: seed_programs returned {type(seeds).__name__}, not a list of Program")
    already = len(population) + population.in_flight
    out = []
    for k in range(already, min(already + n, population.capacity)):
        program = seeds[k] if k < len(seeds) else space.random_program(rng)
        out.append(Proposal(program, None, {"initial": True}))
    return out
