"""The asynchronous steady-state loop (design.md section 5).

    seed population -> [propose -> evaluate -> record -> update population & strategy] until budget

`workers` proposals are kept in flight. Each result is committed to the store first, then enters the
population (the oldest leaves), then the strategy observes it, then new proposals fill the free
slots. There is no generation barrier. A proposal whose behaviour fingerprint was already evaluated
is answered from the duplicate cache: it is recorded (marked cached) and enters the population, but
spends no evaluation of the budget.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from evolve.errors import EvolveError, OptionError
from evolve.executors import WorkItem, WorkResult
from evolve.plugin_manager import PluginManager, SpaceSpec, default_manager
from evolve.population import AgingPopulation, Individual
from evolve.space import Evaluation
from evolve.store import Pending, RunConfig, RunRecord, Store
from evolve.strategy import Proposal

log = logging.getLogger(__name__)

#: A run that gets only duplicate-cache answers this many times in a row has converged; it stops as
#: "stalled" instead of spinning forever without spending its budget.
MAX_CACHE_STREAK = 10_000
#: How often (in recorded individuals) the predictor's state is checkpointed in the store.
CHECKPOINT_EVERY = 200


class Engine:
    """Runs (or resumes) one stored run to its end."""

    def __init__(self, store: Store, run: RunRecord, plugins: PluginManager | None = None):
        self.store = store
        self.run = run
        self.plugins = plugins or default_manager()
        cfg: RunConfig = run.config
        self.config = cfg
        spec = SpaceSpec(cfg.space, cfg.space_options)
        self.space = self.plugins.make_space(spec)
        self.predictor = None
        strategy_options = dict(cfg.strategy_options)
        if cfg.predictor is not None:
            self.predictor = self.plugins.make_predictor(cfg.predictor, self.space, cfg.predictor_options)
            strategy_options["predictor"] = self.predictor
        self.strategy = self.plugins.make_strategy(cfg.strategy, self.space, strategy_options)
        self.executor = self.plugins.make_executor(cfg.executor, spec, cfg.workers, cfg.executor_options)
        self.population = AgingPopulation(self.strategy.population_size)
        self.in_flight: dict[int, Pending] = {}
        # fingerprint in flight -> proposals with the same behaviour, answered when its result arrives
        self.waiting: dict[str, list[Proposal]] = {}
        self.cache: dict[str, Evaluation] = {}
        self.evaluated = 0
        self.cached = 0
        self.recorded = 0
        self.next_ticket = 1
        self.solved = False
        self.cache_streak = 0
        self._last_checkpoint = 0
        self.rng = np.random.default_rng(cfg.seed)

    # ------------------------------------------------------------------ the loop
    def execute(self) -> str:
        """Run until the budget is spent (or the problem is solved, when asked); returns why it stopped."""
        resumed = self._restore()
        self.plugins.hook.evolve_run_started(run=self.run, resumed=resumed, evaluated=self.evaluated)
        reason = "interrupted"
        try:
            reason = self._loop()
        finally:
            self.executor.shutdown()
            status = "interrupted" if reason == "interrupted" else "finished"
            self.store.set_status(self.run.id, status, reason)
            self.plugins.hook.evolve_run_finished(run=self.run, reason=reason)
        return reason

    def _loop(self) -> str:
        while True:
            stop = self._stop_reason()
            if stop is None:
                self._fill()
            if not self.in_flight:
                return self._stop_reason() or "budget"
            self._record_results(self.executor.results())

    def _stop_reason(self) -> str | None:
        if self.solved and self.config.stop_when_solved:
            return "solved"
        if self.cache_streak >= MAX_CACHE_STREAK:
            return "stalled"
        if self.evaluated + len(self.in_flight) >= self.config.budget:
            return "budget"
        return None

    def _fill(self) -> None:
        """Propose until `workers` evaluations are in flight (or the budget is committed)."""
        while self._stop_reason() is None:
            free = min(self.config.workers - len(self.in_flight), self.config.budget - self.evaluated - len(self.in_flight))
            if free <= 0:
                return
            self.population.in_flight = len(self.in_flight)
            proposals = self.strategy.propose(self.population, free, self.rng)
            if not proposals:
                return  # the strategy waits for results (e.g. its initial programs are all in flight)
            fingerprints = self.space.fingerprints([p.program for p in proposals])
            fresh: list[Pending] = []
            answered: list[tuple[Proposal, str, Evaluation]] = []
            for proposal, fingerprint in zip(proposals, fingerprints):
                if fingerprint in self.cache:
                    answered.append((proposal, fingerprint, self.cache[fingerprint]))
                elif fingerprint in self.waiting:  # the same behaviour is being evaluated right now
                    self.waiting[fingerprint].append(proposal)
                else:
                    self.waiting[fingerprint] = []
                    fresh.append(self._pending(proposal, fingerprint))
            self.cache_streak = 0 if fresh else self.cache_streak + len(proposals)
            self._record_cached(answered)
            self._submit(fresh)
            if not fresh and not answered:
                return  # every proposal waits on an evaluation in flight: let results come first

    def _pending(self, proposal: Proposal, fingerprint: str) -> Pending:
        return Pending(self._take_ticket(), proposal.program, fingerprint, proposal.parent, proposal.info)

    def _take_ticket(self) -> int:
        self.next_ticket += 1
        return self.next_ticket - 1

    def _submit(self, items: list[Pending]) -> None:
        if not items:
            return
        self.store.add_pending(self.run.id, items)
        for item in items:
            self.in_flight[item.ticket] = item
        self.executor.submit([WorkItem(item.ticket, item.program) for item in items])

    # ------------------------------------------------------------------ recording
    def _record_cached(self, answered: list[tuple[Proposal, str, Evaluation]]) -> None:
        """Record proposals answered by the duplicate cache (no evaluation spent)."""
        if not answered:
            return
        entries = []
        for proposal, fingerprint, evaluation in answered:
            individual = Individual(
                self.recorded + len(entries) + 1, proposal.program, evaluation, proposal.parent, True, proposal.info, 0.0
            )
            entries.append((individual, self._take_ticket(), fingerprint))
        self.store.record(self.run.id, entries)
        self.cached += len(entries)
        self._admit([individual for individual, _, _ in entries])

    def _record_results(self, results: list[WorkResult]) -> None:
        entries = []
        for result in results:
            item = self.in_flight.pop(result.ticket)
            individual = Individual(
                self.recorded + len(entries) + 1, item.program, _checked(result.evaluation),
                item.parent, False, item.proposal, result.seconds,
            )
            entries.append((individual, item.ticket, item.fingerprint))
        if not entries:
            return
        self.store.record(self.run.id, entries)  # committed before anything else learns of them
        for individual, _, fingerprint in entries:
            if fingerprint is not None:
                self.cache[fingerprint] = individual.evaluation
        self.evaluated += len(entries)
        self._admit([individual for individual, _, _ in entries])
        self._record_cached(
            [
                (proposal, fingerprint, individual.evaluation)
                for individual, _, fingerprint in entries
                for proposal in self.waiting.pop(fingerprint, [])
            ]
        )

    def _admit(self, individuals: list[Individual]) -> None:
        self.recorded += len(individuals)
        for individual in individuals:
            self.population.add(individual)
            if individual.evaluation.metrics.get("solved"):
                self.solved = True
        self.strategy.observe(individuals)
        if self.predictor is not None:
            self.predictor.observe(individuals)
            self._checkpoint_predictor()
        for individual in individuals:
            self.plugins.hook.evolve_individual_evaluated(run=self.run, individual=individual)

    def _checkpoint_predictor(self) -> None:
        """Save the predictor's state every CHECKPOINT_EVERY recorded individuals."""
        if self.recorded - self._last_checkpoint >= CHECKPOINT_EVERY:
            self.store.save_checkpoint(self.run.id, "predictor", self.recorded, self.predictor.state())
            self._last_checkpoint = self.recorded

    # ------------------------------------------------------------------ resume
    def _restore(self) -> bool:
        """Rebuild the population, counters and cache from the store; resubmit pending proposals."""
        self.evaluated, self.cached = self.store.counts(self.run.id)
        self.recorded = self.evaluated + self.cached
        if self.recorded == 0 and not self.store.pending(self.run.id):
            return False
        for individual in self.store.individuals(self.run.id, last=self.population.capacity):
            self.population.add(individual)
            self.solved = self.solved or bool(individual.evaluation.metrics.get("solved"))
        self.cache = self.store.fingerprint_cache(self.run.id)
        if self.predictor is not None:
            self._restore_predictor()
        self.next_ticket = self.store.next_ticket(self.run.id)
        # A fresh stream: replaying the original one would re-propose what was already evaluated.
        self.rng = np.random.default_rng([self.config.seed, self.recorded])
        pending = self.store.pending(self.run.id)
        for item in pending:
            self.in_flight[item.ticket] = item
            self.waiting[item.fingerprint] = []
        self.executor.submit([WorkItem(item.ticket, item.program) for item in pending])
        log.info("resumed run %d: %d evaluated, %d pending", self.run.id, self.evaluated, len(pending))
        return True


    def _restore_predictor(self) -> None:
        """Load the last checkpoint, then show the predictor what was recorded after it (or
        everything, when there is no checkpoint): it ends up having seen every individual once."""
        checkpoint = self.store.load_checkpoint(self.run.id, "predictor")
        seen = 0
        if checkpoint is not None:
            seen, state = checkpoint
            self.predictor.restore(state)
        later = [ind for ind in self.store.individuals(self.run.id) if ind.id > seen]
        if later:
            self.predictor.observe(later)
        self._last_checkpoint = self.recorded


def _checked(evaluation: Evaluation) -> Evaluation:
    """A NaN fitness is a failure, whatever the space said."""
    if evaluation.error is None and math.isnan(evaluation.fitness):
        return Evaluation.failure("fitness is NaN", **evaluation.metrics)
    return evaluation


def start_run(store: Store, config: RunConfig, plugins: PluginManager | None = None) -> Engine:
    """Create a run in the store and an engine for it (validates the config by building everything)."""
    plugins = plugins or default_manager()
    if config.predictor is None:
        # A strategy that needs a predictor names the one to use when the run names none.
        default = getattr(plugins.lookup("strategy", config.strategy), "default_predictor", None)
        if default is not None:
            config = dataclasses.replace(config, predictor=default)
    # Build first so a bad option fails before a run row is written.
    spec = SpaceSpec(config.space, config.space_options)
    space = plugins.make_space(spec)
    strategy_options = dict(config.strategy_options)
    if config.predictor is not None:
        strategy_options["predictor"] = plugins.make_predictor(config.predictor, space, config.predictor_options)
    plugins.make_strategy(config.strategy, space, strategy_options)
    plugins.lookup("executor", config.executor)
    if config.budget < 1:
        raise OptionError("budget must be at least 1")
    if config.workers < 1:
        raise OptionError("workers must be at least 1")
    run = store.create_run(config)
    try:
        return Engine(store, run, plugins)
    except BaseException:  # e.g. executor options a cluster rejects: leave no run that never ran
        store.delete_run(run.id)
        raise


def resume_run(store: Store, run_id: int, plugins: PluginManager | None = None) -> Engine:
    run = store.run(run_id)
    if run.status == "finished":
        raise EvolveError(f"run {run_id} already finished ({run.reason}); nothing to resume")
    return Engine(store, run, plugins)
