"""The plugin boundary (design.md 10.4): whatever a space's evaluator returns, and whatever a
strategy proposes, is checked here, once, before anything records it.

A plugin that breaks its contract must not corrupt a run. So:
* a batch with the wrong number of results fails as a whole, with the reason: nothing is
  attributed to the wrong program and nothing waits forever for a missing result;
* a fitness must be a real number: numpy and JAX scalars are converted to a Python float; NaN and
  infinities are failures with their reason (a failure's fitness is -inf);
* metrics must be JSON-able: numpy/JAX scalars and small arrays are converted, anything else fails
  the program with the reason;
* proposals (`checked_proposals`) must be at most the number asked for, each a Proposal of a valid
  program of the run's space, whose parent is none or an individual of the run, with JSON-able
  info. A strategy that breaks this stops the run with one PluginError line, the run left
  interrupted: a wrong proposal would otherwise surface as a traceback deep in an evaluator, or be
  stored where no reader expects it.
"""

from __future__ import annotations

import json
import math
import numbers
from typing import Any, Sequence

from evolve.errors import PluginError, ProgramError
from evolve.program import Program
from evolve.space import Evaluation
from evolve.strategy import Proposal

#: arrays in metrics are kept up to this many elements (a curve, per-task scores); larger ones fail
MAX_METRIC_ARRAY = 10_000


def checked_batch(programs: Sequence[Any], evaluations: Any) -> list[Evaluation]:
    """One checked Evaluation per program, whatever `evaluations` is."""
    if not isinstance(evaluations, (list, tuple)):
        reason = f"evaluate returned {type(evaluations).__name__}, not a list of Evaluation"
        return [Evaluation.failure(reason) for _ in programs]
    if len(evaluations) != len(programs):
        reason = (
            f"evaluate returned {len(evaluations)} evaluations for {len(programs)} programs;"
            " the whole batch is recorded as failed"
        )
        return [Evaluation.failure(reason) for _ in programs]
    return [checked(e) for e in evaluations]


def checked(evaluation: Any) -> Evaluation:
    """`evaluation` with plain Python values, or a failure saying what was wrong with it."""
    if not isinstance(evaluation, Evaluation):
        return Evaluation.failure(f"evaluate returned a {type(evaluation).__name__}, not an Evaluation")
    try:
        metrics = json_safe(evaluation.metrics)
        json.dumps(metrics)
    except (TypeError, ValueError) as e:
        return Evaluation.failure(f"metrics are not JSON-able: {e}")
    if not isinstance(metrics, dict):
        return Evaluation.failure(f"metrics must be a dict, got {type(evaluation.metrics).__name__}")
    if evaluation.error is not None:
        return Evaluation(-math.inf, metrics, str(evaluation.error))
    fitness = _real(evaluation.fitness)
    if fitness is None:
        return Evaluation.failure(f"fitness must be a real number, got {type(evaluation.fitness).__name__}", **metrics)
    if not math.isfinite(fitness):
        spelled = "NaN" if math.isnan(fitness) else ("+inf" if fitness > 0 else "-inf")
        return Evaluation.failure(f"fitness is {spelled}", **metrics)
    return Evaluation(fitness, metrics, None)


def checked_proposals(strategy: str, proposals: Any, asked: int, space, recorded: int) -> list:
    """`proposals`, what strategy `strategy` returned when asked for `asked` in a run that has
    recorded individuals 1..`recorded`, as a list of Proposals; a PluginError naming the strategy and
    the first breach otherwise."""
    name = f"strategy {strategy!r}"
    if not isinstance(proposals, (list, tuple)):
        raise PluginError(f"{name}: propose returned {type(proposals).__name__}, not a list of Proposal")
    if len(proposals) > asked:
        raise PluginError(f"{name}: propose returned {len(proposals)} proposals when asked for {asked}")
    for k, proposal in enumerate(proposals):
        if not isinstance(proposal, Proposal):
            raise PluginError(f"{name}: proposal {k} is a {type(proposal).__name__}, not a Proposal")
        parent = proposal.parent
        if parent is not None and (isinstance(parent, bool) or not isinstance(parent, int) or not 1 <= parent <= recorded):
            raise PluginError(f"{name}: proposal {k}'s parent is {parent!r}, not None or the id of an individual of"
                              f" this run (1 to {recorded})")
        if not isinstance(proposal.program, Program):
            raise PluginError(f"{name}: proposal {k}'s program is a {type(proposal.program).__name__}, not a Program")
        try:
            made_for = proposal.program.space
            if space.name is not None and made_for != space.name:
                raise ProgramError(f"a program of space {made_for!r}, not {space.name!r}")
            space.validate(proposal.program)
        except ProgramError as e:
            raise PluginError(f"{name}: proposal {k} is not a valid program (made by the strategy, or by the"
                              f" space's seed_programs, random_program or mutate): {e}") from None
        try:
            json.dumps(json_safe(proposal.info))
        except (TypeError, ValueError) as e:
            raise PluginError(f"{name}: proposal {k}'s info cannot be stored as JSON: {e}") from None
    return list(proposals)


def _real(value: Any) -> float | None:
    """A Python float from a Python, numpy or JAX real scalar; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
        return float(value)
    if getattr(value, "shape", None) == () and hasattr(value, "item"):  # a 0-d array (numpy or JAX)
        item = value.item()
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            return float(item)
    return None


def json_safe(value: Any) -> Any:
    """`value` with numpy/JAX scalars and small arrays turned into Python numbers and lists.

    Raises TypeError for what JSON cannot hold (objects, non-string keys, huge arrays)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"key {k!r} is a {type(k).__name__}, not a string")
            out[k] = json_safe(v)
        return out
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    shape = getattr(value, "shape", None)
    if shape is not None and hasattr(value, "tolist"):
        size = math.prod(shape)
        if size > MAX_METRIC_ARRAY:
            raise TypeError(f"an array of {size} elements (at most {MAX_METRIC_ARRAY})")
        return json_safe(value.tolist())
    if isinstance(value, numbers.Number) and hasattr(value, "item"):  # numpy scalar types
        return json_safe(value.item())
    raise TypeError(f"{type(value).__name__} {value!r:.60} is not JSON-able")
