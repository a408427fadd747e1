"""PAM-RT, predictor-based adaptive mutation with re-tournament (Co-Reyes et al., 2024).

A tournament picks the parent; a chain of children is built, each one more mutation from the last;
the first child the predictor says beats the parent is accepted and evaluated. If none does within
`chain_length` tries, a new tournament picks a new parent, up to `tournaments` times; then a fallback
child is evaluated (`fallback`), so every proposal costs exactly one evaluation. The chains of
`tournaments_per_call` tournaments, for every proposal still waiting, are scored in one batched call.
Children that behave like a program already proposed are skipped (see guided.py): they are not even
shown to the predictor.
"""

from __future__ import annotations

import time

import numpy as np

from evolve import hookimpl
from evolve.population import AgingPopulation
from evolve.predictor import Predictor
from evolve.program import Program
from evolve.strategy import Proposal
from evolve.plugins.guided import GuidedStrategy
from evolve.plugins.selection_options import check_whole_number

#: The most children one proposal may try (chain_length x tournaments): each try is a mutation, a
#: fingerprint and a predictor comparison, about 1 ms on Nguyen-4, so at this bound an evaluation
#: waits about a second for its proposal.
MAX_TRIES = 1024
FALLBACKS = ("best-liked", "first-parent")


class PamRT(GuidedStrategy):
    def __init__(
        self,
        space,
        predictor: Predictor | None = None,
        population_size: int = 100,
        tournament_size: int = 10,
        chain_length: int = 4,
        tournaments: int = 8,
        tournaments_per_call: int = 8,
        threshold: float = 0.75,
        fallback: str = "best-liked",
        max_predictor_share: float | None = None,
    ):
        """Improvements are rare (on Nguyen-4 about 1 novel child in 13 beats its tournament parent), so
        the first child an imperfect predictor calls better is often one of its mistakes. A confident
        threshold keeps most mistakes out, and a large try budget lets the rare confident call come:
        at 0.75 the online discriminator's accepted children beat their parent about 7 times as often
        as unguided ones, but it accepts only 1 child in 50 (measured on Nguyen-4 after 1,000
        evaluations). `tournaments_per_call` chains are scored per batched predictor call.
        chain_length: children in a chain, each one more mutation from the previous.
        tournaments: tournaments (each a new parent and chain) tried before the fallback child is
        taken; chain_length x tournaments is a proposal's try budget.
        tournaments_per_call: tournaments whose chains are scored in one batched predictor call.
        threshold: a child is accepted when the predictor's probability that it beats its parent is above this.
        fallback: the child evaluated when none is accepted: "best-liked", the child most likely to beat
        its own parent, from any tournament; or "first-parent", the best-liked child of the first
        tournament's parent (the one regularized evolution would mutate). Probabilities against
        different parents do not compare: the weakest parent is the easiest to beat, so "best-liked"
        leans towards children of weak parents."""
        super().__init__(space, predictor, population_size, tournament_size, max_predictor_share)
        for name, value in (("chain_length", chain_length), ("tournaments", tournaments),
                            ("tournaments_per_call", tournaments_per_call)):
            check_whole_number(name, value, 1, MAX_TRIES)
        if chain_length * tournaments > MAX_TRIES:
            raise ValueError(f"chain_length x tournaments, the children tried per proposal, must be at most {MAX_TRIES},"
                             f" got {chain_length} x {tournaments}")
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}")
        if fallback not in FALLBACKS:
            raise ValueError(f"fallback must be one of {', '.join(FALLBACKS)}, got {fallback!r}")
        self.chain_length, self.tournaments, self.threshold = chain_length, tournaments, threshold
        self.fallback = fallback
        self.tournaments_per_call = min(tournaments_per_call, tournaments)

    def guided_proposals(self, population: AgingPopulation, n: int,
                         rng: np.random.Generator) -> tuple[list[Proposal], list[str]]:
        tries = [0] * n
        seconds = {"predictor": np.zeros(n), "mutation": np.zeros(n), "novelty": np.zeros(n)}  # each slot's share
        best: dict[int, tuple[float, Program, int, str]] = {}  # slot -> (P, child, parent id, fingerprint) liked best
        accepted: dict[int, tuple[float, Program, int, str]] = {}
        held = 0
        pinned: set[int] = set()  # slots whose fallback is the first parent's child, never replaced
        while held < self.tournaments and len(accepted) < n:
            first_call = held == 0
            rounds = min(self.tournaments_per_call, self.tournaments - held)
            held += rounds
            waiting = [k for k in range(n) if k not in accepted]
            start = time.perf_counter()
            parents = {(k, r): population.tournament(self.tournament_size, rng) for k in waiting for r in range(rounds)}
            chains = {key: self._chain(parent.program, rng) for key, parent in parents.items()}
            children = [c for key in parents for c in chains[key]]
            seconds["mutation"][waiting] += (time.perf_counter() - start) / len(waiting)
            start = time.perf_counter()
            novel, fingerprints = self.novel(children)
            seconds["novelty"][waiting] += (time.perf_counter() - start) / len(waiting)
            # only novel children are worth asking about; a known behaviour scores -1
            p = np.full(len(children), -1.0)
            asked = np.flatnonzero(novel)
            if asked.size:
                versus = [parents[key].program for key in parents for _ in chains[key]]
                p[asked], spent = self.compare([children[i] for i in asked], [versus[i] for i in asked])
                seconds["predictor"][waiting] += spent / len(waiting)
            p = p.reshape(len(waiting), rounds * self.chain_length)
            for row, k in enumerate(waiting):
                scores = p[row]
                above = np.flatnonzero(scores > self.threshold)
                first_chain = scores[: self.chain_length]
                pin = (not above.size and first_call and self.fallback == "first-parent"
                       and bool((first_chain > -1.0).any()))  # the first parent has a novel child
                i = int(above[0]) if above.size else int(np.argmax(first_chain if pin else scores))
                key = (k, i // self.chain_length)
                choice = (float(scores[i]), chains[key][i % self.chain_length], parents[key].id,
                          fingerprints[row * rounds * self.chain_length + i])
                tries[k] += i + 1 if above.size else scores.size
                if above.size:
                    accepted[k] = choice
                elif pin:
                    best[k] = choice
                    pinned.add(k)
                elif k not in pinned and (k not in best or choice[0] > best[k][0]):
                    best[k] = choice
        out, chosen = [], []
        for k in range(n):
            score, child, parent, fingerprint = accepted[k] if k in accepted else best[k]
            chosen.append(fingerprint)
            out.append(Proposal(child, parent, self.info(
                tries[k], max(score, 0.0), seconds["predictor"][k], accepted=k in accepted,
                mutation_seconds=float(seconds["mutation"][k]), novelty_seconds=float(seconds["novelty"][k]),
            )))
        return out, chosen

    def _chain(self, program: Program, rng: np.random.Generator) -> list[Program]:
        """chain_length children, each one more mutation from the previous."""
        chain = []
        for _ in range(self.chain_length):
            program = self.space.mutate(program, rng)
            chain.append(program)
        return chain


@hookimpl
def evolve_strategies():
    return {"pam-rt": PamRT}
