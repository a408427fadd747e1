"""Every hook a plugin can implement, documented in one place.

A plugin is a module (or object) with functions marked `@evolve.hookimpl`, found through the
entry-point group `evolve` (built-ins come in through the very same group). Two kinds of hooks:

* Registration hooks return `{name: class}` for what the plugin adds. The engine instantiates the
  class with the user's options as keyword arguments, so a constructor's signature is its option list.
* Lifecycle hooks are called as a run progresses; reporters (progress bars, loggers, dashboards)
  implement them. They must not raise: an exception in a reporter is logged and ignored.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("evolve")
hookimpl = pluggy.HookimplMarker("evolve")


# ------------------------------------------------------------------------------- registration


@hookspec
def evolve_search_spaces():
    """Return `{name: SearchSpace subclass}`.

    Constructed as `cls(**space_options)`; `evolve run NAME --problem P` passes `problem=P`.
    """


@hookspec
def evolve_strategies():
    """Return `{name: Strategy class}`.

    Constructed as `cls(space, **strategy_options)`. A strategy has `population_size`,
    `propose(population, n, rng) -> list[Proposal]` and `observe(individuals)`.
    """


@hookspec
def evolve_predictors():
    """Return `{name: Predictor class}`.

    Constructed as `cls(space, **predictor_options)`. A predictor has `observe(individuals)`,
    `compare(a_programs, b_programs) -> P(a better than b)` (batched) and `metrics()`.
    """


@hookspec
def evolve_executors():
    """Return `{name: Executor class}`.

    Constructed as `cls(space_spec, workers=W, **executor_options)`, where `space_spec` names the space
    and its options so that remote workers can build their own copy. An executor has
    `submit(items)`, `results()` and `shutdown()` (see evolve.executors).
    """


# ------------------------------------------------------------------------------- lifecycle


@hookspec
def evolve_run_started(run, resumed, evaluated):
    """A run starts. `run` is an `evolve.store.RunRecord`; `resumed` is True when it continues a stored
    run, which has already spent `evaluated` evaluations of its budget."""


@hookspec
def evolve_individual_evaluated(run, individual):
    """An individual was recorded in the store (after the commit). `individual` is an
    `evolve.population.Individual`; `individual.cached` is True when the duplicate cache answered."""


@hookspec
def evolve_run_finished(run, reason):
    """A run stopped: `reason` is "budget", "solved", "interrupted" or "stalled"."""
