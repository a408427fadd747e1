"""The asynchronous steady-state loop (design.md section 5).

    seed population -> [propose -> fingerprint -> evaluate -> record -> population, strategy, predictor] until budget

`workers` proposals are kept in flight. Each result is committed to the store first, then enters the
population (the oldest leaves), then the strategy and the predictor observe it, then new proposals
fill the free slots. There is no generation barrier. A proposal whose behaviour fingerprint was
already evaluated is answered from the duplicate cache: it is recorded (marked cached) and enters the
population, but spends no evaluation of the budget.

Resuming is exact: the random generator's state is committed with every write, the population is
the last P recorded individuals, the predictor comes back from its checkpoint plus the individuals
recorded after it, and the strategy replays the history (`Strategy.recover`). So a run killed at any
moment and resumed proposes what the uninterrupted run would have proposed (serial, one worker).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import inspect
import logging
import math
import time
from typing import Sequence

import numpy as np

from evolve.boundary import checked, checked_proposals
from evolve.errors import EvolveError, OptionError, PluginError, StoreError
from evolve.executors import WorkItem, WorkResult
from evolve.lease import Driver, Heartbeat
from evolve.lifecycle import Lifecycle
from evolve.plugin_manager import PluginManager
from evolve.population import AgingPopulation, Individual
from evolve.program import Program
from evolve.space import Evaluation
from evolve.store import Pending, RunConfig, RunRecord, Store
from evolve.strategy import Proposal

log = logging.getLogger(__name__)

#: A run that gets only duplicate-cache answers this many times in a row has converged; it stops as
#: "stalled" instead of spinning forever without spending its budget.
MAX_CACHE_STREAK = 10_000
#: Why a run ends finished: its budget spent, its problem solved, stalled (above), or exhausted (its
#: strategy proposed nothing more while nothing was in flight: a finite strategy went through its
#: space). Any other reason leaves the run interrupted, to be resumed.
FINISHED_REASONS = ("budget", "solved", "stalled", "exhausted")
#: How often (in recorded individuals) the predictor's state is checkpointed in the store.
CHECKPOINT_EVERY = 200
#: After this many evaluations, a run most of whose evaluations failed says so (once) on the terminal.
FAILURE_WARNING_AFTER = 50


class Engine:
    """Runs (or resumes) one stored run to its end."""

    def __init__(self, store: Store, run: RunRecord, plugins: PluginManager | None = None):
        self.store = store
        self.run = run
        self.plugins = plugins or PluginManager()
        cfg: RunConfig = run.config
        self.config = cfg
        self.space = self.plugins.make_space(self.plugins.space_spec(cfg.space, cfg.space_options))
        self.predictor = None
        strategy_options = dict(cfg.strategy_options)
        if cfg.predictor is not None:
            self.predictor = self.plugins.make_predictor(cfg.predictor, self.space, cfg.predictor_options)
            strategy_options["predictor"] = self.predictor
        self.strategy = self.plugins.make_strategy(cfg.strategy, self.space, strategy_options)
        spec = self.plugins.space_spec(cfg.space, cfg.space_options, local=self.space)
        self.executor = self.plugins.make_executor(cfg.executor, spec, cfg.workers, cfg.executor_options)
        self.lifecycle = Lifecycle(self.plugins.pm)
        self.population = AgingPopulation(self.strategy.population_size)
        self.in_flight: dict[int, Pending] = {}
        # fingerprint in flight -> proposals with the same behaviour, answered when its result arrives
        self.waiting: dict[str, list[Proposal]] = {}
        self.cache: dict[str, Evaluation] = {}
        self.failures: collections.Counter[str] = collections.Counter()
        self.evaluated = 0
        self.cached = 0
        self.recorded = 0
        self.next_ticket = 1
        self.solved = False
        self.metric_spent = 0.0  # the evaluated individuals' total of the metric_budget's metric
        self.cache_streak = 0
        self._last_checkpoint = 0
        self._warned_failures = False
        self._warned_fingerprints = False
        self.rng = np.random.default_rng(cfg.seed)

    # ------------------------------------------------------------------ the loop
    def execute(self) -> str:
        """Run until the budget is spent (or the problem is solved, when asked); returns why it stopped.

        The run is driven by this process alone: a live driver elsewhere makes this raise StoreError,
        before anything is changed."""
        driver = Driver.this_process()
        try:
            self.store.acquire(self.run.id, driver)
        except BaseException:
            self.executor.shutdown()
            raise
        reason = "interrupted"
        try:
            with self._heartbeat(driver):
                resumed = self._restore()
                self.lifecycle.notify("evolve_run_started", run=self.run, resumed=resumed, evaluated=self.evaluated)
                reason = self._loop()
        except KeyboardInterrupt:
            raise
        except BaseException as e:
            reason = f"crashed: {type(e).__name__}: {e}"
            raise
        finally:
            self.executor.shutdown()
            if self.predictor is not None:
                self.predictor.close()  # a training thread still inside JAX would abort the process at exit
            status = "finished" if reason in FINISHED_REASONS else "interrupted"
            try:
                self.store.release(self.run.id, status, reason)
            except StoreError as e:
                # A full disk: the error that stopped the run is the one to report; readers of the
                # store see the run's driver gone once this process ends.
                log.info("run %d: its status was not recorded: %s", self.run.id, e)
            self.lifecycle.notify("evolve_run_finished", run=self.run, reason=reason)
        self._warn_about_failures(final=True)
        return reason

    def _heartbeat(self, driver: Driver):
        """Keep the run's heartbeat fresh from a thread with its own connection (none for a store in
        memory, which no other process can see)."""
        path = self.store.path
        if path == ":memory:" or path.startswith("file::memory:"):
            return contextlib.nullcontext()

        def beat():
            with self.store.sibling() as store:
                store.heartbeat(self.run.id, driver)

        return Heartbeat(beat)

    def _loop(self) -> str:
        while True:
            stop = self._stop_reason()
            if stop is None:
                self._fill()
            if not self.in_flight:  # nothing proposed, nothing to wait for: the strategy has no more
                return self._stop_reason() or "exhausted"
            self._record_results(self.executor.results())

    def _stop_reason(self) -> str | None:
        if self.solved and self.config.stop_when_solved:
            return "solved"
        if self.cache_streak >= MAX_CACHE_STREAK:
            return "stalled"
        if self.evaluated + len(self.in_flight) >= self.config.budget:
            return "budget"
        if self.config.metric_budget and self.metric_spent >= next(iter(self.config.metric_budget.values())):
            return "budget"
        return None

    def _fill(self) -> None:
        """Propose until `workers` evaluations are in flight (or the budget is committed)."""
        while self._stop_reason() is None:
            free = min(self.config.workers - len(self.in_flight), self.config.budget - self.evaluated - len(self.in_flight))
            if free <= 0:
                return
            self.population.in_flight = len(self.in_flight)
            proposals = checked_proposals(self.config.strategy, self.strategy.propose(self.population, free, self.rng),
                                          free, self.space, self.recorded)
            if not proposals:
                return  # the strategy waits for results (e.g. its initial programs are all in flight)
            start = time.perf_counter()
            fingerprints = self._fingerprints([p.program for p in proposals])
            # Fingerprints run programs on probe inputs (for symbolic regression, everything the
            # fitness needs): their seconds are evaluation work, recorded with each proposal.
            share = (time.perf_counter() - start) / len(proposals)
            proposals = [dataclasses.replace(p, info={**p.info, "fingerprint_seconds": share}) for p in proposals]
            fresh: list[Pending] = []
            answered: list[tuple[Proposal, str, Evaluation]] = []
            for proposal, fingerprint in zip(proposals, fingerprints):
                if fingerprint is None:
                    fresh.append(self._pending(proposal, None))
                elif fingerprint in self.cache:
                    answered.append((proposal, fingerprint, self.cache[fingerprint]))
                elif fingerprint in self.waiting:  # the same behaviour is being evaluated right now
                    self.waiting[fingerprint].append(proposal)
                else:
                    self.waiting[fingerprint] = []
                    fresh.append(self._pending(proposal, fingerprint))
            self.cache_streak = 0 if fresh else self.cache_streak + len(proposals)
            self._record(self._cached_entries(answered))
            self._submit(fresh)
            if not fresh and not answered:
                return  # every proposal waits on an evaluation in flight: let results come first

    def _fingerprints(self, programs: Sequence[Program]) -> list[str | None]:
        """The space's behaviour fingerprints; a program whose fingerprint cannot be computed gets
        None (it is evaluated, never deduplicated) and the run says why, once."""
        try:
            out = self.space.fingerprints(programs)
            if isinstance(out, (list, tuple)) and len(out) == len(programs) and all(isinstance(f, str) for f in out):
                return list(out)
            problem = f"returned {type(out).__name__} of {len(out) if hasattr(out, '__len__') else '?'} for {len(programs)} programs"
        except Exception as e:  # noqa: BLE001 - a plugin's bug must not end the run
            problem = f"raised {type(e).__name__}: {e}"
        if not self._warned_fingerprints:
            self._warned_fingerprints = True
            log.warning("search space %r: fingerprints() %s; those programs are evaluated without the duplicate cache",
                        self.config.space, problem)
        out: list[str | None] = []
        for program in programs:
            try:
                one = self.space.fingerprints([program])
                out.append(one[0] if isinstance(one, (list, tuple)) and len(one) == 1 and isinstance(one[0], str) else None)
            except Exception:  # noqa: BLE001
                out.append(None)
        return out

    def _pending(self, proposal: Proposal, fingerprint: str | None) -> Pending:
        return Pending(self._take_ticket(), proposal.program, fingerprint, proposal.parent, proposal.info)

    def _take_ticket(self) -> int:
        self.next_ticket += 1
        return self.next_ticket - 1

    def _rng_state(self) -> dict:
        return self.rng.bit_generator.state

    def _submit(self, items: list[Pending]) -> None:
        if not items:
            return
        self.store.add_pending(self.run.id, items, rng_state=self._rng_state())
        for item in items:
            self.in_flight[item.ticket] = item
        self.executor.submit([WorkItem(item.ticket, item.program) for item in items])

    # ------------------------------------------------------------------ recording
    def _cached_entries(self, answered: list[tuple[Proposal, str, Evaluation]], first_id: int | None = None):
        """Store entries for proposals answered by the duplicate cache (no evaluation spent)."""
        first = self.recorded + 1 if first_id is None else first_id
        return [
            (Individual(first + k, proposal.program, evaluation, proposal.parent, True, proposal.info, 0.0),
             self._take_ticket(), fingerprint)
            for k, (proposal, fingerprint, evaluation) in enumerate(answered)
        ]

    def _record_results(self, results: list[WorkResult]) -> None:
        """Commit results, and the waiting proposals they answer, in one transaction; then admit them."""
        entries = []
        for result in results:
            item = self.in_flight.pop(result.ticket, None)
            if item is None:
                log.warning("executor %r returned a result for ticket %s, which is not in flight; ignored",
                            self.config.executor, result.ticket)
                continue
            individual = Individual(
                self.recorded + len(entries) + 1, item.program, checked(result.evaluation),
                item.parent, False, item.proposal, result.seconds,
            )
            entries.append((individual, item.ticket, item.fingerprint))
        if not entries:
            return
        evaluated = len(entries)
        answered = [
            (proposal, fingerprint, individual.evaluation)
            for individual, _, fingerprint in entries[:evaluated]
            for proposal in (self.waiting.pop(fingerprint, []) if fingerprint is not None else [])
        ]
        entries += self._cached_entries(answered, self.recorded + evaluated + 1)
        self._record(entries)

    def _record(self, entries: list[tuple[Individual, int, str | None]]) -> None:
        """Commit entries (before anything else learns of them), then admit them."""
        if not entries:
            return
        self.store.record(self.run.id, entries, rng_state=self._rng_state())
        for individual, _, fingerprint in entries:
            if individual.cached:
                self.cached += 1
                continue
            self.evaluated += 1
            self.metric_spent += self._metric_cost(individual)
            if fingerprint is not None:
                self.cache[fingerprint] = individual.evaluation
            if individual.evaluation.failed:
                self.failures[individual.evaluation.error] += 1
        self._admit([individual for individual, _, _ in entries])
        self._warn_about_failures()

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
            self.lifecycle.notify("evolve_individual_evaluated", run=self.run, individual=individual)

    def _metric_cost(self, individual: Individual) -> float:
        """What one evaluation spent of the metric budget: its value of the metric (0 when it has
        none, as a failed evaluation)."""
        if not self.config.metric_budget:
            return 0.0
        value = individual.evaluation.metrics.get(next(iter(self.config.metric_budget)), 0.0)
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 else 0.0

    def _checkpoint_predictor(self) -> None:
        """Save the predictor's state every CHECKPOINT_EVERY recorded individuals."""
        if self.recorded - self._last_checkpoint >= CHECKPOINT_EVERY:
            state = self.predictor.state()
            if not isinstance(state, (bytes, bytearray)):
                raise PluginError(f"predictor {self.config.predictor!r}: state() returned {type(state).__name__}, not bytes;"
                                  " a resumed run could not restore it")
            self.store.save_checkpoint(self.run.id, "predictor", self.recorded, bytes(state))
            self._last_checkpoint = self.recorded

    def _warn_about_failures(self, final: bool = False) -> None:
        """Say on the terminal, once, that most evaluations fail, and the most common reason."""
        failed = sum(self.failures.values())
        if self._warned_failures or not failed or (not final and self.evaluated < FAILURE_WARNING_AFTER):
            return
        if failed * 2 <= self.evaluated:
            return
        self._warned_failures = True
        reason, count = self.failures.most_common(1)[0]
        log.warning("run %d: %d of %d evaluations failed; most common reason (%d times): %s "
                    "(`evolve show %d` lists every reason)", self.run.id, failed, self.evaluated, count, reason, self.run.id)

    # ------------------------------------------------------------------ resume
    def _restore(self) -> bool:
        """Rebuild the population, counters, cache, predictor and strategy from the store; resubmit
        pending proposals."""
        self.evaluated, self.cached = self.store.counts(self.run.id)
        self.recorded = self.evaluated + self.cached
        pending = self.store.pending(self.run.id)
        if self.recorded == 0 and not pending:
            return False
        history = self.store.individuals(self.run.id)
        for individual in history[-self.population.capacity:]:
            self.population.add(individual)
        self.solved = any(individual.evaluation.metrics.get("solved") for individual in history)
        self.metric_spent = sum(self._metric_cost(ind) for ind in history if not ind.cached)
        self.failures.update(ind.evaluation.error for ind in history if not ind.cached and ind.evaluation.failed)
        self.cache = self.store.fingerprint_cache(self.run.id)
        if self.predictor is not None:
            self._restore_predictor(history)
        self.strategy.recover(history, [item.program for item in pending])
        self.next_ticket = self.store.next_ticket(self.run.id)
        state = self.store.rng_state(self.run.id)
        if state is not None:
            self.rng.bit_generator.state = state
        else:  # a run recorded before the state was stored: a fresh stream, never the original one
            self.rng = np.random.default_rng([self.config.seed, self.recorded])
        for item in pending:
            self.in_flight[item.ticket] = item
            if item.fingerprint is not None:
                self.waiting[item.fingerprint] = []
        self.executor.submit([WorkItem(item.ticket, item.program) for item in pending])
        log.info("resumed run %d: %d evaluated, %d pending", self.run.id, self.evaluated, len(pending))
        return True

    def _restore_predictor(self, history: list[Individual]) -> None:
        """Load the last checkpoint, then show the predictor what was recorded after it (or
        everything, when there is no checkpoint): it ends up having seen every individual once."""
        checkpoint = self.store.load_checkpoint(self.run.id, "predictor")
        seen = 0
        if checkpoint is not None:
            seen, state = checkpoint
            self.predictor.restore(state)
        later = [ind for ind in history if ind.id > seen]
        if later:
            self.predictor.observe(later)
        self._last_checkpoint = self.recorded


def start_run(store: Store, config: RunConfig, plugins: PluginManager | None = None) -> Engine:
    """Create a run in the store and an engine for it. Everything is built before the run can start,
    so a bad option fails with one line and leaves no run behind."""
    plugins = plugins or PluginManager()
    config = prepare(config, plugins)
    _start_ray_first(config)
    run = store.create_run(config)
    try:
        return Engine(store, run, plugins)
    except BaseException:  # a bad option, or a cluster that rejects the executor: leave no run that never ran
        store.delete_run(run.id)
        raise


def prepare(config: RunConfig, plugins: PluginManager | None = None) -> RunConfig:
    """`config` checked and completed as a new run stores it: the plugins exist, the space's options
    build its grammar, the strategy's default predictor is named, and the space options are what
    `options_to_store` says. Raises OptionError (or another EvolveError) with one line. `start_run`
    calls it; a client may call it first to fail before it creates a store file."""
    plugins = plugins or PluginManager()
    if config.budget < 1:
        raise OptionError("budget must be at least 1")
    if config.workers < 1:
        raise OptionError("workers must be at least 1")
    _check_metric_budget(config.metric_budget)
    if config.predictor is None:
        # A strategy that needs a predictor names the one to use when the run names none.
        default = getattr(plugins.lookup("strategy", config.strategy), "default_predictor", None)
        if default is not None:
            config = dataclasses.replace(config, predictor=default)
    plugins.lookup("search space", config.space)
    plugins.lookup("strategy", config.strategy)
    plugins.lookup("executor", config.executor)
    if config.predictor is not None:
        config = _background_training_where_order_is_lost(config, plugins)
    grammar = plugins.make_space(plugins.space_spec(config.space, config.space_options))  # checks the options
    return dataclasses.replace(config, space_options=grammar.options_to_store(config.space_options))


def _background_training_where_order_is_lost(config: RunConfig, plugins: PluginManager) -> RunConfig:
    """On an executor whose results come back in completion order (Ray), a run is not reproducible
    step for step anyway, and a predictor training on the proposal path caps the cluster's throughput
    (issue 12: 27 ms per proposal caps it at ~37 proposals a second); so a predictor that can train in
    the background does, unless the run's options set `background`. Stored with the run's config, so
    `evolve show` says so and a resume does the same."""
    predictor = plugins.lookup("predictor", config.predictor)
    if (getattr(plugins.lookup("executor", config.executor), "completes_out_of_order", False)
            and "background" not in config.predictor_options
            and "background" in inspect.signature(predictor).parameters):
        config = dataclasses.replace(config, predictor_options={**config.predictor_options, "background": True})
    return config


def resumable(store: Store, run_id: int) -> RunRecord:
    """The run, if it can be resumed: not finished, and not driven by a live process (checked again,
    atomically, when the engine takes the run)."""
    run = store.run(run_id)
    if run.status == "finished":
        raise EvolveError(f"run {run_id} already finished ({run.reason}); nothing to resume")
    if run.state == "running" and run.driver != Driver.this_process():
        raise EvolveError(f"run {run_id} is being driven by {run.driver.describe(run.heartbeat)}; "
                          "wait for it to end, or stop it (Ctrl-C or kill) before resuming")
    return run


def resume_run(store: Store, run_id: int, plugins: PluginManager | None = None) -> Engine:
    run = resumable(store, run_id)
    _start_ray_first(run.config)
    return Engine(store, run, plugins)


def _start_ray_first(config: RunConfig) -> None:
    """A Ray run starts or joins Ray before the engine builds the space: Ray forks helper
    processes, and a fork after JAX has started its threads can deadlock."""
    if config.executor == "ray":
        from evolve.ray_executor import connect

        options = config.executor_options
        connect(options.get("address"), options.get("quiet", True))


def _check_metric_budget(metric_budget) -> None:
    if not isinstance(metric_budget, dict) or len(metric_budget) > 1:
        raise OptionError(f"a metric budget is one metric and its total, e.g. {{'training_seconds': 5e6}};"
                          f" got {metric_budget!r}")
    for name, total in metric_budget.items():
        if not isinstance(name, str) or not name:
            raise OptionError(f"a metric budget names a metric, got {name!r}")
        if isinstance(total, bool) or not isinstance(total, (int, float)) or not math.isfinite(total) or total <= 0:
            raise OptionError(f"the metric budget of {name!r} must be a positive number, got {total!r}")
