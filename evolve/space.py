"""The SearchSpace contract: what a space must say and do so the engine can search it.

A space names its vocabulary (inputs, outputs, ops), makes seed and random programs, mutates them
(the generic typed mutation unless it needs its own), evaluates batches of them, fingerprints their
behaviour for the duplicate cache, and exports them in the formats that fit it.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from evolve import mutation
from evolve.errors import OptionError
from evolve.ops import Vocabulary
from evolve.program import Program


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """The result of evaluating one program. A failure is a result too, never a crash.

    fitness: higher is better; `-inf` when the evaluation failed.
    metrics: whatever the space measured (JSON-able), e.g. `{"nrmse": 0.1, "solved": False}`.
    error: None, or why it failed (the exception, a non-finite output, a timeout).
    """

    fitness: float
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None

    @classmethod
    def failure(cls, reason: str, **metrics: Any) -> "Evaluation":
        return cls(-math.inf, dict(metrics), reason)

    @property
    def failed(self) -> bool:
        return self.error is not None


class SearchSpace(abc.ABC):
    """Subclass this and register the class through the `evolve_search_spaces` hook.

    Constructor keyword arguments are the space's options (`evolve run SPACE --space-opt k=v`).
    """

    #: registry name, e.g. "symbolic_regression"
    name: str = ""
    #: formats `export` accepts
    export_formats: tuple[str, ...] = ("json",)

    @property
    @abc.abstractmethod
    def vocabulary(self) -> Vocabulary:
        """Inputs, output types, ops and node limit of this space's programs."""

    @abc.abstractmethod
    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        """Evaluate a batch; one Evaluation per program, in order. Must not compile per program."""

    def seed_programs(self, rng: np.random.Generator) -> list[Program]:
        """Known-good programs to start a search from (e.g. SGD, Adam). None by default."""
        return []

    def random_program(self, rng: np.random.Generator) -> Program:
        return mutation.random_program(self.vocabulary, self.name, rng)

    def mutate(self, program: Program, rng: np.random.Generator) -> Program:
        return mutation.mutate(program, self.vocabulary, rng)

    def fingerprint(self, program: Program) -> str:
        """A hash of behaviour; programs with equal fingerprints share one evaluation.
        The default is the canonical structural hash; spaces override it with outputs on probe inputs."""
        return program.digest

    def fingerprints(self, programs: Sequence[Program]) -> list[str]:
        """Batched `fingerprint`; override when a batch is cheaper than a loop."""
        return [self.fingerprint(p) for p in programs]

    def describe(self, program: Program) -> str:
        """One readable line for `evolve show` / `evolve top`."""
        return repr(program.pruned())

    def export(self, program: Program, format: str) -> str:
        """The program as text in `format` (one of `export_formats`)."""
        if format == "json":
            return program.to_json(indent=2)
        raise OptionError(f"space {self.name!r} cannot export {format!r}; formats: {', '.join(self.export_formats)}")

    def check_export_format(self, format: str) -> None:
        if format not in self.export_formats:
            raise OptionError(f"space {self.name!r} cannot export {format!r}; formats: {', '.join(self.export_formats)}")
