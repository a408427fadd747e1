"""The SearchSpace contract: a space is a light grammar and a heavy evaluator, two objects.

The grammar (this class) says what programs look like and how they change: the vocabulary, seed and
random programs, mutation, validity, cheap behaviour fingerprints, describe and export. It is built
wherever programs are handled (the driver, `evolve show`, `top`, `export`, the discriminator), so its
constructor must stay cheap: no datasets, environments or compiled training loops.

The evaluator (`build_evaluator()`) holds whatever evaluation needs: data, environments, compiled
training loops. It is built lazily, once per process that evaluates (an in-process executor, each
Ray actor, `evolve evaluate`), and never by a driver whose evaluations run elsewhere.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, Sequence

from evolve import mutation
from evolve.errors import OptionError, PluginError
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


class Evaluator(abc.ABC):
    """The heavy half of a search space: evaluates batches of programs.

    Built by `SearchSpace.build_evaluator()` once per evaluating process, and kept for every batch
    that process evaluates, so a compiled training loop is compiled once per worker."""

    @abc.abstractmethod
    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        """Evaluate a batch; one Evaluation per program, in order. Must not compile per program.

        Whatever is returned is checked at one boundary (evolve.boundary) before it is recorded:
        a wrong count fails the whole batch, a non-finite fitness or non-JSON metrics fail that
        program, numpy and JAX scalars are converted. An exception fails the batch's programs
        (each is then tried alone, so one bad program does not fail its neighbours)."""


class SearchSpace(abc.ABC):
    """The grammar of a space. Subclass it and register the class through `evolve_search_spaces`.

    Constructor keyword arguments are the space's options (`evolve run SPACE --space-opt k=v`);
    their annotations are checked and their docstring lines are shown by `evolve plugins`.

    A space provides its evaluator in one of two ways:
    * override `build_evaluator()` to return an `Evaluator` (the heavy parts live there, built only
      where evaluations run), or
    * override `evaluate(programs)` directly, for a space whose evaluation needs nothing heavy (the
      space itself is then its evaluator).
    """

    #: registry name, e.g. "symbolic-regression" (set by the plugin manager when it builds the space)
    name: str = ""
    #: formats `export` accepts
    export_formats: tuple[str, ...] = ("json",)
    #: the smallest fitness gap that is a real difference: a learned predictor treats closer pairs as
    #: ties and never trains on them (its `tie_tolerance` option, unless given). Where mutation nudges
    #: a constant for a sliver of fitness, a predictor trained on every gap learns to be sure of
    #: slivers, and guided search climbs in them (the optimizer space: see its value)
    fitness_resolution: float = 1e-6

    @property
    @abc.abstractmethod
    def vocabulary(self) -> Vocabulary:
        """Inputs, output types, ops, node limit and validity rules of this space's programs."""

    # ------------------------------------------------------------------ evaluation
    def build_evaluator(self) -> Evaluator:
        """The heavy half, built once per evaluating process (see the module docstring)."""
        if type(self).evaluate is SearchSpace.evaluate:
            raise PluginError(
                f"search space {self.name or type(self).__name__!r} defines neither build_evaluator() nor evaluate()"
            )
        return _SpaceAsEvaluator(self)

    @property
    def evaluator(self) -> Evaluator:
        """This process's evaluator, built on first use."""
        built = self.__dict__.get("_evaluator")
        if built is None:
            built = self.__dict__["_evaluator"] = self.build_evaluator()
        return built

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        """Evaluate a batch with this process's evaluator (built on first use)."""
        return self.evaluator.evaluate(programs)

    # ------------------------------------------------------------------ programs
    def seed_programs(self, rng) -> list[Program]:
        """Known-good programs to start a search from (e.g. SGD, Adam). None by default."""
        return []

    def random_program(self, rng) -> Program:
        return mutation.random_program(self.vocabulary, self.name, rng)

    def mutate(self, program: Program, rng) -> Program:
        return mutation.mutate(program, self.vocabulary, rng)

    def validate(self, program: Program) -> Program:
        """Check `program` against this space's vocabulary and rules; raise ProgramError if it breaks one."""
        return program.validate(self.vocabulary)

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
        self.check_export_format(format)
        if format == "json":
            return program.to_json(indent=2)
        raise OptionError(f"space {self.name!r} lists {format!r} in export_formats but does not export it")

    def options_to_store(self, options: dict[str, Any]) -> dict[str, Any]:
        """The space options a new run stores, given the options this space was built with: what
        rebuilds this same space later, anywhere, from the store alone. The default is `options`;
        a space whose options name something outside the store (a user's data file) returns what
        that thing holds instead, so show, export and resume never depend on it again.
        `engine.start_run` calls it once, before the run exists."""
        return dict(options)

    def report_panel(self, program: Program) -> Any:
        """Optional: this space's own section of `evolve report` about one of a run's top programs
        (e.g. the fitted curve against the data), or None for no section (the default).

        Return an `evolve.report_panel.Panel`: a title, paragraphs of text, and plots given as data
        (`Plot`, `Series`, numbers and labels). The report draws the plots and escapes every text,
        so a panel holds no markup and can run no script. It is called on the grammar, in the
        process writing the report, once per top program shown: keep it cheap and use what the
        grammar holds (a space that truly needs its evaluator may build it, `self.evaluator`, at that
        cost). If it raises, the report shows the error in the panel's place and goes on."""
        return None

    def check_export_format(self, format: str) -> None:
        if format not in self.export_formats:
            raise OptionError(f"space {self.name!r} cannot export {format!r}; formats: {', '.join(self.export_formats)}")


class _SpaceAsEvaluator(Evaluator):
    """A space that evaluates by its own `evaluate` method is its own evaluator."""

    def __init__(self, space: SearchSpace):
        self.space = space

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        return type(self.space).evaluate(self.space, programs)
