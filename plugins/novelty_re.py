"""Novelty-filtered regularized evolution: a tournament picks the parent and it is mutated again and
again until a child behaves unlike every program proposed so far, up to `tries` children (then the
last one is proposed, and the duplicate cache answers it).

It is PAM-RT without the predictor: the same novelty filter (guided.py), the same number of children
tried per evaluation (PAM-RT's chain_length x tournaments, 32 by default), and none of them charged
to the budget. Beside plain regularized evolution in a speed-up table, it shows how much of PAM-RT's
gain is the filter's and how much is the discriminator's.
"""

from __future__ import annotations

import numpy as np

from evolve import hookimpl
from evolve.population import AgingPopulation
from evolve.strategy import Proposal, initial_proposals
from evolve.plugins.guided import NoveltyMemory
from evolve.plugins.pam_rt import MAX_TRIES
from evolve.plugins.selection_options import check_selection, check_whole_number


class NoveltyRE(NoveltyMemory):
    def __init__(self, space, population_size: int = 100, tournament_size: int = 5, tries: int = 32, per_call: int = 8):
        """population_size: individuals alive at once; each new one retires the oldest (aging).
        tournament_size: individuals drawn at random for each tournament; the fittest is the parent.
        tries: children made from the parent until one behaves unlike every program proposed before;
        after this many the last is proposed anyway (PAM-RT's try budget by default: 4 x 8).
        per_call: children fingerprinted at a time, in one batched call to the space; those after the
        first novel one are dropped."""
        check_selection(population_size, tournament_size)
        check_whole_number("tries", tries, 1, MAX_TRIES)
        check_whole_number("per_call", per_call, 1, MAX_TRIES)
        super().__init__(space)
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.tries = tries
        self.per_call = per_call

    def propose(self, population: AgingPopulation, n: int, rng: np.random.Generator) -> list[Proposal]:
        if population.initializing:
            return self.remember(initial_proposals(self.space, population, n, rng))
        return [self._one(population, rng) for _ in range(n)]

    def _one(self, population: AgingPopulation, rng: np.random.Generator) -> Proposal:
        parent = population.tournament(self.tournament_size, rng)
        tries = 0
        while True:
            children = [self.space.mutate(parent.program, rng) for _ in range(min(self.per_call, self.tries - tries))]
            novel, fingerprints = self.novel(children)
            i = int(np.argmax(novel)) if novel.any() else len(children) - 1
            tries += i + 1
            if novel[i] or tries == self.tries:
                proposal = Proposal(children[i], parent.id, {"tries": tries, "novel": bool(novel[i])})
                return self.remember([proposal], [fingerprints[i]])[0]


@hookimpl
def evolve_strategies():
    return {"novelty-re": NoveltyRE}
