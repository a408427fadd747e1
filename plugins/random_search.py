"""Random search: every proposal is a fresh random program from the space. The baseline every
guided search must beat."""

from __future__ import annotations

import numpy as np

from evolve import hookimpl
from evolve.population import AgingPopulation
from evolve.strategy import Proposal, Strategy


class RandomSearch(Strategy):
    population_size = 1

    def __init__(self, space):
        self.space = space

    def propose(self, population: AgingPopulation, n: int, rng: np.random.Generator) -> list[Proposal]:
        return [Proposal(self.space.random_program(rng)) for _ in range(n)]


@hookimpl
def evolve_strategies():
    return {"random-search": RandomSearch}
