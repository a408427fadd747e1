"""A reporter: every recorded individual as one JSON line, appended to the file named by the
environment variable EVOLVE_EXAMPLE_LOG (nothing is written when it is unset).

Lines: {"event": "started", ...}, one {"event": "evaluated", ...} per individual, in the order they
were recorded, and {"event": "finished", "reason": ...}. Lifecycle hooks are delivered at most once:
a resumed run appends where the killed one stopped, and an individual recorded just before a
SIGKILL may be missing from the log (the store has it).
"""

from __future__ import annotations

import json
import os

import evolve

ENV = "EVOLVE_EXAMPLE_LOG"


def _append(record: dict) -> None:
    path = os.environ.get(ENV)
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


@evolve.hookimpl
def evolve_run_started(run, resumed, evaluated):
    _append({"event": "started", "run": run.id, "space": run.config.space, "resumed": resumed, "evaluated": evaluated})


@evolve.hookimpl
def evolve_individual_evaluated(run, individual):
    evaluation = individual.evaluation
    _append({
        "event": "evaluated",
        "run": run.id,
        "id": individual.id,
        "parent": individual.parent,
        "cached": individual.cached,
        "fitness": None if evaluation.failed else evaluation.fitness,  # a failure's -inf is not JSON
        "error": evaluation.error,
        "program": individual.program.to_dict(),
    })


@evolve.hookimpl
def evolve_run_finished(run, reason):
    _append({"event": "finished", "run": run.id, "reason": reason})
