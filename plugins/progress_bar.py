"""A progress bar on the terminal: evaluations spent against the budget, best fitness so far,
duplicate-cache answers. Silent when stderr is not a terminal (set EVOLVE_PROGRESS=1 to force it).
tqdm is imported only when a bar is shown: every command loads this module, few draw a bar."""

from __future__ import annotations

import math
import os
import sys
from typing import TYPE_CHECKING

from evolve import hookimpl

if TYPE_CHECKING:
    from tqdm import tqdm

_bars: dict[int, tuple[tqdm, list]] = {}


def _wanted() -> bool:
    forced = os.environ.get("EVOLVE_PROGRESS")
    return forced == "1" if forced is not None else sys.stderr.isatty()


@hookimpl
def evolve_run_started(run, resumed, evaluated):
    if not _wanted():
        return
    from tqdm import tqdm

    bar = tqdm(total=run.config.budget, desc=f"run {run.id}", unit="eval", dynamic_ncols=True, file=sys.stderr,
               initial=evaluated)
    _bars[run.id] = (bar, [-math.inf, 0])  # best fitness, cache answers


@hookimpl
def evolve_individual_evaluated(run, individual):
    entry = _bars.get(run.id)
    if entry is None:
        return
    bar, state = entry
    if individual.cached:
        state[1] += 1
    else:
        bar.update(1)
    state[0] = max(state[0], individual.fitness)
    if individual.id % 50 == 0:
        bar.set_postfix(best=f"{state[0]:.6g}", cached=state[1], refresh=False)


@hookimpl
def evolve_run_finished(run, reason):
    entry = _bars.pop(run.id, None)
    if entry is not None:
        entry[0].close()
