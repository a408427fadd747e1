"""Every hook a plugin can implement, documented in one place.

A plugin is a module (or object) with functions marked `@evolve.hookimpl`, found through the
entry-point group `evolve` (built-ins come in through the very same group), or registered in code
with `PluginManager(extra_plugins=(module,))`. A hook implementation may take any subset of the
arguments documented here, by name (pluggy semantics). Two kinds of hooks:

* Registration hooks return `{name: class}` for what the plugin adds. They are called whenever a
  plugin manager looks a name up (`evolve run`, `evolve plugins`, every process that builds a space
  by name), so they must be cheap and free of side effects: import heavy libraries inside the
  classes, not in the hook or at module level. The class is instantiated with the user's options as
  keyword arguments, so a constructor's signature is its option list: an unknown option, a value of
  the wrong simple type (int, float, bool, str) or a ValueError/TypeError from the constructor is
  shown as one line naming the plugin and the option. A registration hook that raises, or returns
  something that is not a dict of classes, marks its plugin broken: `evolve plugins` lists it with
  the error, and every other plugin keeps working. Two plugins registering one name: the later one
  wins, with a warning.
* Lifecycle hooks serve reporters (progress bars, loggers, dashboards). They are called in the
  driver's process, one after another, while the run waits, so they must be quick. A reporter that
  raises is disabled for the rest of that run, with one warning line naming it and the error; the run
  goes on and the other reporters still hear everything. Delivery is at most once per individual,
  across a kill too: `evolve_individual_evaluated` is called after the individual is committed to
  the store, so an individual recorded just before a SIGKILL may never be delivered, and a resumed
  run never delivers one twice (it starts after the last recorded individual). The store, not a
  reporter, is the record of a run.

Check a space or strategy against its contract with `evolve.testing` (check_search_space,
check_strategy) in the plugin's own tests.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("evolve")
hookimpl = pluggy.HookimplMarker("evolve")


# ------------------------------------------------------------------------------- registration


@hookspec
def evolve_search_spaces():
    """Return `{name: SearchSpace subclass}` (evolve.space).

    Constructed as `cls(**space_options)` wherever programs are handled (the driver, `evolve show`,
    `top`, `export`, each Ray worker); `evolve run NAME --problem P` passes `problem=P`. The
    constructor builds only the grammar (vocabulary, options: cheap); the evaluator is built by
    `build_evaluator()`, once per process that evaluates. A space that needs nothing heavy may
    override `evaluate(programs)` instead.
    """


@hookspec
def evolve_strategies():
    """Return `{name: Strategy class}` (evolve.strategy).

    Constructed as `cls(space, **strategy_options)`. A strategy has `population_size`,
    `propose(population, n, rng) -> list[Proposal]` (fewer than n, or none, means "wait for
    results"), `observe(individuals)` and `recover(history, pending)`, which rebuilds its state when a
    stored run resumes. A class attribute `default_predictor = "NAME"` makes the run build that
    predictor when it names none; the predictor is then passed as the `predictor` option.
    """


@hookspec
def evolve_predictors():
    """Return `{name: Predictor class}` (evolve.predictor).

    Constructed as `cls(space, **predictor_options)`. A predictor has `observe(individuals)`,
    `compare(a_programs, b_programs) -> P(a better than b)` (batched), `ready`, `metrics()`, and
    `state()` / `restore(state)`, which the engine uses to checkpoint it in the store.
    """


@hookspec
def evolve_executors():
    """Return `{name: Executor class}` (evolve.executors).

    Constructed as `cls(space_spec, workers=W, **executor_options)`. `space_spec` (a SpaceSpec)
    names the space, its options and its class; `space_spec.build()` gives a process its own space
    (the driver's own instance when the spec carries one), and `space_spec.remote()` is the spec to
    send to another process. Where evaluations run, use `space.evaluator` (built once there) and
    `evolve.executors.evaluate_safely`, so results pass the evaluation boundary. An executor has
    `submit(items)`, `results()` and `shutdown()`.
    """


# ------------------------------------------------------------------------------- lifecycle


@hookspec
def evolve_run_started(run, resumed, evaluated):
    """Called once each time a run starts or resumes, after its state is restored and before the
    first proposal.

    run: the `evolve.store.RunRecord` (id, config, created, status, reason).
    resumed: True when it continues a stored run.
    evaluated: how many evaluations of the budget that run has already spent (0 for a new run).

    If it raises, the reporter is disabled for the rest of the run (one warning) and the run goes on.
    """


@hookspec
def evolve_individual_evaluated(run, individual):
    """Called once per recorded individual, in the order they were recorded, after the store
    committed it and after the population, strategy and predictor took it in.

    run: the `evolve.store.RunRecord`.
    individual: the `evolve.population.Individual` (id, program, evaluation, parent, cached, proposal,
    seconds); `individual.cached` is True when the duplicate cache answered instead of an evaluation,
    and `individual.evaluation.error` says why a failed evaluation failed (its fitness is -inf).

    At most once per individual, even across a kill: one recorded just before a SIGKILL may never be
    delivered, and a resumed run never delivers one twice. If it raises, the reporter is disabled for
    the rest of the run (one warning) and the run goes on.
    """


@hookspec
def evolve_run_finished(run, reason):
    """Called once when the run stops in this process, its status already stored: `reason` is
    "budget", "solved", "stalled" or "exhausted" (finished; evolve.engine.FINISHED_REASONS), or
    "interrupted" (Ctrl-C or SIGTERM) or
    "crashed: <the error>" (the run can be resumed). Not called when the process is killed (SIGKILL).

    run: the `evolve.store.RunRecord` as the run started (its status field is not refreshed).

    If it raises, the error is reported in one warning line; the run has already ended.
    """
