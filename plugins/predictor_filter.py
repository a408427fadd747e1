"""Predictor filter: a tournament picks the parent, `candidates` children are made by one mutation
each, and only the child that wins most pairwise comparisons (summed probabilities, all pairs in one
batched call) is evaluated, preferring children that behave unlike anything proposed before (see
guided.py). A simpler use of a predictor than PAM-RT, for ablation."""

from __future__ import annotations

import itertools

import numpy as np

from evolve import hookimpl
from evolve.population import AgingPopulation
from evolve.predictor import Predictor
from evolve.strategy import Proposal, initial_proposals
from evolve.plugins.guided import GuidedStrategy
from evolve.plugins.selection_options import check_whole_number

#: The most children compared per proposal: all pairs are compared, so the cost grows as its square.
MAX_CANDIDATES = 64


class PredictorFilter(GuidedStrategy):
    def __init__(
        self,
        space,
        predictor: Predictor | None = None,
        population_size: int = 100,
        tournament_size: int = 10,
        candidates: int = 8,
    ):
        """candidates: children made from the parent (one mutation each); the predictor compares every
        pair and the one that wins most is evaluated (2 to 64)."""
        super().__init__(space, predictor, population_size, tournament_size)
        check_whole_number("candidates", candidates, 2, MAX_CANDIDATES)
        self.candidates = candidates

    def propose(self, population: AgingPopulation, n: int, rng: np.random.Generator) -> list[Proposal]:
        if population.initializing:
            return self.remember(initial_proposals(self.space, population, n, rng))
        if not self.predictor.ready:
            return self.remember([self.unguided(population, rng) for _ in range(n)])
        c = self.candidates
        pairs = list(itertools.combinations(range(c), 2))
        parents = [population.tournament(self.tournament_size, rng) for _ in range(n)]
        children = [[self.space.mutate(parent.program, rng) for _ in range(c)] for parent in parents]
        a = [kids[i] for kids in children for i, _ in pairs] + [kid for kids in children for kid in kids]
        b = [kids[j] for kids in children for _, j in pairs] + [parent.program for parent, kids in zip(parents, children) for _ in kids]
        p, spent = self.compare(a, b)
        duels, versus_parent = p[: n * len(pairs)].reshape(n, len(pairs)), p[n * len(pairs) :].reshape(n, c)
        novel, fingerprints = self.novel([kid for kids in children for kid in kids])
        novel = novel.reshape(n, c)
        out, chosen = [], []
        for k, parent in enumerate(parents):
            wins = np.zeros(c)
            for (i, j), pij in zip(pairs, duels[k]):
                wins[i] += pij
                wins[j] += 1.0 - pij
            w = int(np.argmax(np.where(novel[k], wins, -1.0)))  # a known behaviour only if all are
            out.append(Proposal(children[k][w], parent.id, self.info(c, versus_parent[k, w], spent / n)))
            chosen.append(fingerprints[k * c + w])
        return self.remember(out, chosen)


@hookimpl
def evolve_strategies():
    return {"predictor-filter": PredictorFilter}
