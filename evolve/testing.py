"""Contract checks for plugin authors: call them from your own tests, the way pytest ships `pytester`.

A run trusts its plugins. The evaluation boundary (evolve.boundary) keeps a broken evaluator from
corrupting a run, but a mutation that is not reproducible, a fingerprint that changes between calls
or a strategy that cannot be restored only shows up as a search that quietly goes wrong. These
checks exercise every method of the contract on real programs of your space and raise one
`ContractError` naming the method and what it broke:

    # tests/test_contract.py of your plugin package
    from evolve.testing import check_search_space, check_strategy
    from my_package.circuits import BooleanCircuits
    from my_package.strategy import MyStrategy

    def test_space_keeps_the_contract():
        check_search_space(BooleanCircuits, {"target": "parity", "bits": 4})

    def test_strategy_keeps_the_contract():
        check_strategy(MyStrategy, BooleanCircuits(), {"population_size": 20})

Each returns a `ContractReport` (what was checked, one line per method; `print` it to see them).
They evaluate programs for real, so give an expensive space small `programs`.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np

from evolve.boundary import checked, checked_batch, checked_proposals
from evolve.errors import EvolveError, PluginError
from evolve.ops import Vocabulary
from evolve.plugin_manager import construct, instantiate_space
from evolve.population import AgingPopulation, Individual
from evolve.program import Program
from evolve.space import Evaluation, Evaluator, SearchSpace
from evolve.strategy import Proposal

#: programs whose fingerprints are also computed one at a time (a fingerprint must not depend on its batch)
ALONE = 5


class ContractError(PluginError):
    """A plugin broke its contract: the message names the method and what it broke."""


@dataclasses.dataclass
class ContractReport:
    """What a check verified: the plugin checked and one line per method."""

    subject: str
    checks: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join([f"{self.subject} keeps the contract:", *(f"  {line}" for line in self.checks)])


# ---------------------------------------------------------------------------- search spaces


def check_search_space(
    space_or_class: SearchSpace | type,
    options: dict[str, Any] | None = None,
    programs: int = 20,
    seed: int = 0,
) -> ContractReport:
    """Check a search space (a class, built here with `options`, or an instance) on its seed
    programs, `programs` random programs and one child of each; raise ContractError on the first
    broken rule. Evaluates every one of those programs, once alone and once in one batch."""
    if programs < 1:
        raise ValueError("programs must be at least 1")
    space, fresh = _space(space_or_class, options)
    report = ContractReport(type(space).__name__)
    check = _Checker(report.subject)
    evaluator_before = "_evaluator" in space.__dict__  # an instance given may have evaluated already
    if fresh and evaluator_before:
        check.fail("build_evaluator", "the constructor built the evaluator: the driver, `evolve show` and `top`"
                   " would pay for it; build it only in build_evaluator()")

    vocabulary = check.call("vocabulary", lambda: space.vocabulary)
    if not isinstance(vocabulary, Vocabulary):
        check.fail("vocabulary", f"is {_a(vocabulary)}, not an evolve.ops.Vocabulary")
    report.checks.append(f"vocabulary: a Vocabulary (inputs: {len(vocabulary.inputs)}, ops: {len(vocabulary.ops)})")

    seeds = _drawn(check, space, "seed_programs", lambda rng: check.call("seed_programs", space.seed_programs, rng), seed)
    report.checks.append(f"seed_programs: {len(seeds)} valid programs, the same for the same seed")
    randoms = _drawn(
        check, space, "random_program", lambda rng: [check.call("random_program", space.random_program, rng) for _ in range(programs)], seed
    )
    report.checks.append(f"random_program: {programs} valid programs, the same for the same seed")
    parents = [(f"seed program {k}", p) for k, p in enumerate(seeds)] + [(f"random program {k}", p) for k, p in enumerate(randoms)]

    children = []
    for k, (origin, parent) in enumerate(parents):
        child = _mutated(check, space, parent, [seed, k], origin)
        children.append((f"the child of {origin}", child))
    report.checks.append(f"mutate: {len(children)} valid children, each unlike its parent, the same for the same seed")

    labelled = parents + children
    for origin, program in labelled:
        _round_trip(check, space, program, origin)
    report.checks.append(f"to_json/from_json: {len(labelled)} programs keep their digest")

    every = [p for _, p in labelled]
    prints = _fingerprints(check, space, every, labelled)
    if fresh:
        other, _ = _space(space_or_class, options)
        if list(check.call("fingerprints", other.fingerprints, every)) != prints:
            check.fail("fingerprints", "a second instance built with the same options gives other fingerprints;"
                       " a resumed run (another process) would not recognise what it evaluated")
    report.checks.append(f"fingerprints: one str per program, the same on every call, alone or in a batch"
                         f"{', and in a second instance' if fresh else ''}")

    for origin, program in labelled:
        text = check.call("describe", space.describe, program)
        if not isinstance(text, str):
            check.fail("describe", f"returned {_a(text)} for {origin}, not a str")
    report.checks.append("describe: a str for every program")
    _exports(check, space, labelled)
    report.checks.append(f"export: a str in every format ({', '.join(space.export_formats)}); unknown formats refused")

    resolution = getattr(space, "fitness_resolution", SearchSpace.fitness_resolution)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not 0.0 <= resolution < math.inf:
        check.fail("fitness_resolution", f"must be a finite number of at least 0, got {resolution!r}")
    report.checks.append(f"fitness_resolution: {resolution:g}, the fitness gap a predictor learns from")

    if not evaluator_before and "_evaluator" in space.__dict__:
        check.fail("build_evaluator", "the evaluator was built before any evaluation (by fingerprints, describe or"
                   " export): the driver, `evolve show` and `top` would pay for it")
    if not evaluator_before:
        report.checks.append("grammar: builds no evaluator (nothing heavy where programs are only handled)")

    evaluator = check.call("build_evaluator", lambda: space.evaluator)
    if not isinstance(evaluator, Evaluator):
        check.fail("build_evaluator", f"returned {_a(evaluator)}, not an evolve.space.Evaluator")
    _evaluations(check, evaluator, labelled[:1])
    evaluations = _evaluations(check, evaluator, labelled)
    failures = collections.Counter(e.error for e in evaluations if e.failed)
    failed = sum(failures.values())
    if failed == len(evaluations):
        reason, count = failures.most_common(1)[0]
        check.fail("evaluate", f"every one of {failed} programs failed; most common reason ({count} times): {reason}")
    report.checks.append(
        f"evaluate: batches of 1 and {len(labelled)}, one Evaluation per program, "
        f"{len(evaluations) - failed} finite fitnesses, {failed} failure{'s' * (failed != 1)} with a reason"
    )
    return report


def _space(space_or_class: SearchSpace | type, options: dict[str, Any] | None) -> tuple[SearchSpace, bool]:
    """The space to check, and whether it was built here (so a second one can be built alike)."""
    if isinstance(space_or_class, type):
        if not issubclass(space_or_class, SearchSpace):
            raise ContractError(f"{space_or_class.__name__} is not a subclass of evolve.SearchSpace")
        name = space_or_class.name or space_or_class.__name__
        return instantiate_space(space_or_class, name, dict(options or {})), True
    if not isinstance(space_or_class, SearchSpace):
        raise ContractError(f"{type(space_or_class).__name__} is not an evolve.SearchSpace")
    if options:
        raise ValueError("options apply only when a class is given; this space is already built")
    return space_or_class, False


class _Checker:
    """Calls a plugin's methods, turning what they raise into a ContractError that names them."""

    def __init__(self, subject: str):
        self.subject = subject

    def fail(self, method: str, message: str):
        raise ContractError(f"{self.subject}.{method}: {message}")

    def call(self, method: str, fn: Callable, *args: Any) -> Any:
        try:
            return fn(*args)
        except ContractError:
            raise
        except Exception as e:  # noqa: BLE001 - whatever a plugin raises is what the author must see
            raise ContractError(f"{self.subject}.{method} raised {type(e).__name__}: {e}") from e

    def valid(self, method: str, space: SearchSpace, program: Any, origin: str) -> Program:
        if not isinstance(program, Program):
            self.fail(method, f"returned {_a(program)} for {origin}, not an evolve.Program")
        try:
            space.validate(program)
        except EvolveError as e:
            self.fail(method, f"{origin} is not a valid program of this space: {e}")
        return program


def _drawn(check: _Checker, space: SearchSpace, method: str, draw: Callable, seed: int) -> list[Program]:
    """Programs from `draw(rng)`, checked valid, and drawn again from the same seed to check they
    are the same (a run with a seed must be reproducible)."""
    first = draw(np.random.default_rng(seed))
    if not isinstance(first, (list, tuple)):
        check.fail(method, f"returned {_a(first)}, not a list of programs")
    for k, program in enumerate(first):
        check.valid(method, space, program, f"program {k}")
    again = draw(np.random.default_rng(seed))
    if [getattr(p, "digest", None) for p in again] != [p.digest for p in first]:
        check.fail(method, "gave other programs for the same numpy seed; draw every random choice from the rng argument")
    return list(first)


def _mutated(check: _Checker, space: SearchSpace, parent: Program, seed: list[int], origin: str) -> Program:
    child = check.valid("mutate", space, check.call("mutate", space.mutate, parent, np.random.default_rng(seed)), f"the child of {origin}")
    if child.digest == parent.digest:
        check.fail("mutate", f"returned {origin} unchanged (same digest): a mutation must change what the program computes")
    again = check.call("mutate", space.mutate, parent, np.random.default_rng(seed))
    if not isinstance(again, Program) or again.digest != child.digest:
        check.fail("mutate", f"gave two different children of {origin} for the same numpy seed;"
                   " draw every random choice from the rng argument")
    return child


def _round_trip(check: _Checker, space: SearchSpace, program: Program, origin: str) -> None:
    try:
        copy = Program.from_json(program.to_json())
    except (EvolveError, TypeError, ValueError) as e:
        check.fail("to_json", f"{origin} does not survive a JSON round trip: {type(e).__name__}: {e}")
    if copy.digest != program.digest:
        check.fail("to_json", f"{origin} has another digest after a JSON round trip (a node value that JSON changes?)")
    check.valid("from_json", space, copy, f"{origin} read back from JSON")


def _fingerprints(check: _Checker, space: SearchSpace, programs: list[Program], labelled) -> list[str]:
    prints = check.call("fingerprints", space.fingerprints, programs)
    if not isinstance(prints, (list, tuple)) or len(prints) != len(programs):
        got = f"{len(prints)} fingerprints" if isinstance(prints, (list, tuple)) else _a(prints)
        check.fail("fingerprints", f"returned {got} for {len(programs)} programs; it must return one str per program")
    for (origin, _), fp in zip(labelled, prints):
        if not isinstance(fp, str):
            check.fail("fingerprints", f"returned {_a(fp)} for {origin}, not a str")
    if list(check.call("fingerprints", space.fingerprints, programs)) != list(prints):
        check.fail("fingerprints", "gave other fingerprints on a second call with the same programs")
    for (origin, program), fp in list(zip(labelled, prints))[:ALONE]:
        if list(check.call("fingerprints", space.fingerprints, [program])) != [fp]:
            check.fail("fingerprints", f"gave {origin} another fingerprint alone than in a batch")
    copies = [Program.from_json(p.to_json()) for p in programs]
    if list(check.call("fingerprints", space.fingerprints, copies)) != list(prints):
        check.fail("fingerprints", "gave programs read back from JSON other fingerprints (a fingerprint must depend"
                   " on what the program computes, not on the Python object)")
    return list(prints)


def _exports(check: _Checker, space: SearchSpace, labelled) -> None:
    formats = space.export_formats
    if not isinstance(formats, (list, tuple)) or not all(isinstance(f, str) for f in formats):
        check.fail("export_formats", f"must be a tuple of format names, got {formats!r}")
    for fmt in formats:
        for origin, program in labelled:
            text = check.call("export", space.export, program, fmt)
            if not isinstance(text, str):
                check.fail("export", f"returned {_a(text)} for {origin} in format {fmt!r}, not a str")
            if fmt == "json":
                try:
                    same = Program.from_json(text).digest == program.digest
                except EvolveError as e:
                    check.fail("export", f"format 'json' of {origin} is not a program: {e}")
                if not same:
                    check.fail("export", f"format 'json' of {origin} reads back as another program")
    try:
        space.export(labelled[0][1], "no-such-format")
    except EvolveError:
        return
    except Exception as e:  # noqa: BLE001
        check.fail("export", f"an unknown format raised {type(e).__name__}, not an EvolveError; call self.check_export_format(format)")
    check.fail("export", "accepted the unknown format 'no-such-format'; call self.check_export_format(format)")


def _evaluations(check: _Checker, evaluator: Evaluator, labelled) -> list[Evaluation]:
    """The evaluator's results for one batch, checked as the evaluation boundary checks them, but
    strictly: what the boundary would turn into a failure is a broken contract here."""
    programs = [p for _, p in labelled]
    results = check.call("evaluate", evaluator.evaluate, programs)
    if not isinstance(results, (list, tuple)):
        check.fail("evaluate", f"returned {_a(results)}, not a list of Evaluation")
    if len(results) != len(programs):
        check.fail("evaluate", f"returned {len(results)} evaluations for a batch of {len(programs)} program{'s' * (len(programs) != 1)};"
                   " it must return exactly one per program, in order")
    out = []
    for (origin, _), result in zip(labelled, results):
        if not isinstance(result, Evaluation):
            check.fail("evaluate", f"returned {_a(result)} for {origin}, not an evolve.Evaluation")
        if result.error is not None and not isinstance(result.error, str):
            check.fail("evaluate", f"the error of {origin} is {_a(result.error)}, not a str")
        plain = checked(result)
        if plain.failed and result.error is None:
            check.fail("evaluate", f"{origin}: {plain.error} (return Evaluation.failure(reason) for a program that cannot be scored)")
        solved = plain.metrics.get("solved", False)
        if not isinstance(solved, bool):
            check.fail("evaluate", f"metrics['solved'] of {origin} is {_a(solved)}, not a bool")
        out.append(plain)
    return out


# ---------------------------------------------------------------------------- strategies


def check_strategy(
    strategy_class: type,
    space: SearchSpace | type,
    options: dict[str, Any] | None = None,
    predictor: type | None = None,
    predictor_options: dict[str, Any] | None = None,
    individuals: int | None = None,
    batch: int = 4,
    seed: int = 0,
) -> ContractReport:
    """Check a strategy by simulating a serial run in `space`: `batch` proposals at a time, each
    evaluated for real, until `individuals` are recorded (default: the population plus a few
    batches), then `batch` more left in flight.

    Checks that propose returns at most n Proposals of valid programs (parents recorded, info
    JSON-able) and never waits with nothing in flight; that observe accepts individuals; that a
    second run with the same seed proposes the same programs; and that a strategy built afresh and
    given `recover(history, pending)` proposes next exactly what the uninterrupted one proposes.
    A strategy that needs a predictor gets a new `predictor(space, **predictor_options)` per run
    (the recovered run's is restored from the uninterrupted run's `state()`)."""
    space, _ = _space(space, None)
    check = _Checker(strategy_class.__name__)
    report = ContractReport(strategy_class.__name__)
    space_check = _Checker(f"{type(space).__name__} (the space; run check_search_space on it)")
    evaluator = space_check.call("build_evaluator", lambda: space.evaluator)
    memo: dict[str, Evaluation] = {}  # each program evaluated once, so every run sees the same results

    def evaluate(programs: Sequence[Program]) -> list[Evaluation]:
        missing = list({p.digest: p for p in programs if p.digest not in memo}.values())
        if missing:
            results = space_check.call("evaluate", evaluator.evaluate, missing)
            memo.update(zip((p.digest for p in missing), checked_batch(missing, results)))
        return [memo[p.digest] for p in programs]

    def new_run() -> _SimulatedRun:
        return _SimulatedRun(check, strategy_class, space, options, predictor, predictor_options, seed)

    first = new_run()
    target = individuals if individuals is not None else first.population.capacity + 4 * batch
    batches = first.drive(target, batch, evaluate)
    report.checks.append(f"propose: {sum(map(len, batches))} proposals in {len(batches)} calls, at most n each,"
                         " valid programs of the space, parents recorded, info JSON-able")
    report.checks.append(f"observe: accepted {len(first.history)} individuals")

    second = new_run()
    if second.drive(target, batch, evaluate) != batches:
        check.fail("propose", "a second run with the same seed proposed other programs; draw every random choice"
                   " from the rng argument and keep no state outside the strategy")
    report.checks.append(f"propose: the same {sum(map(len, batches))} proposals in a second run with the same seed")

    recovered = new_run()
    if first.predictor is not None:
        check.call("restore", recovered.predictor.restore, first.snapshot.predictor_state)
    recovered.history = list(first.history)
    for individual in first.history[-recovered.population.capacity:]:
        recovered.population.add(individual)
    check.call("recover", recovered.strategy.recover, list(first.history), [p.program for p in first.snapshot.in_flight])
    recovered.rng.bit_generator.state = first.snapshot.rng_state
    recovered.population.in_flight = len(first.snapshot.in_flight)
    after = _signature(recovered.propose(batch))
    if after != batches[-1]:
        check.fail("recover", "after recover(history, pending) it proposed other programs than the uninterrupted run"
                   " (same population, same rng state): a resumed run would not continue as the uninterrupted one;"
                   " rebuild in recover() every piece of state that observe() and propose() build")
    report.checks.append(f"recover: from {len(first.history)} individuals and {len(first.snapshot.in_flight)} pending,"
                         f" the same {len(after)} next proposals as the uninterrupted run")
    return report


@dataclasses.dataclass
class _Snapshot:
    """The uninterrupted run at the moment the recovered one takes over."""

    in_flight: list[Proposal]
    rng_state: dict
    predictor_state: bytes | None


class _SimulatedRun:
    """The engine's loop, serial and synchronous: propose, evaluate, record, observe."""

    def __init__(self, check, strategy_class, space, options, predictor, predictor_options, seed):
        self.check = check
        self.space = space
        chosen = dict(options or {})
        self.predictor = None
        if predictor is not None:
            self.predictor = construct(predictor, dict(predictor_options or {}), f"predictor {predictor.__name__!r}", space)
            chosen["predictor"] = self.predictor
        self.strategy = construct(strategy_class, chosen, f"strategy {strategy_class.__name__!r}", space)
        size = self.strategy.population_size
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            check.fail("population_size", f"must be an int of at least 1, got {size!r}")
        self.population = AgingPopulation(size)
        self.history: list[Individual] = []
        self.rng = np.random.default_rng(seed)
        self.snapshot: _Snapshot | None = None

    def drive(self, individuals: int, batch: int, evaluate) -> list[list[tuple[str, int | None]]]:
        """Run until `individuals` are recorded, then propose one batch left in flight and the batch
        after it; the proposals of every call, as (digest, parent)."""
        calls = []
        while len(self.history) < individuals:
            proposals = self.propose(batch)
            if not proposals:
                self.check.fail("propose", "returned no proposals with nothing in flight: a run would end there"
                                " ('exhausted') with fewer individuals than asked for")
            calls.append(_signature(proposals))
            self.record(proposals, evaluate([p.program for p in proposals]))
        in_flight = self.propose(batch)
        calls.append(_signature(in_flight))
        state = self.predictor.state() if self.predictor is not None else None
        self.snapshot = _Snapshot(in_flight, self.rng.bit_generator.state, state)
        self.population.in_flight = len(in_flight)
        calls.append(_signature(self.propose(batch)))
        return calls

    def propose(self, n: int) -> list[Proposal]:
        proposals = self.check.call("propose", self.strategy.propose, self.population, n, self.rng)
        try:  # the rules a run holds every proposal to (individual ids are 1, 2, ... as in a run)
            return checked_proposals(type(self.strategy).__name__, proposals, n, self.space, len(self.history))
        except PluginError as e:
            self.check.fail("propose", str(e).partition(": ")[2])

    def record(self, proposals: list[Proposal], evaluations: list[Evaluation]) -> None:
        start = len(self.history) + 1
        individuals = [
            Individual(start + k, p.program, e, p.parent, False, dict(p.info))
            for k, (p, e) in enumerate(zip(proposals, evaluations))
        ]
        self.history.extend(individuals)
        for individual in individuals:
            self.population.add(individual)
        self.check.call("observe", self.strategy.observe, individuals)
        if self.predictor is not None:
            self.check.call("observe", self.predictor.observe, individuals)


def _a(value: Any) -> str:
    """`a dict`, `an int`: the type of `value` for a message."""
    name = type(value).__name__
    return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name}"


def _signature(proposals: Sequence[Proposal]) -> list[tuple[str, int | None]]:
    """What must be the same in two runs: each proposal's program and parent (info holds timings)."""
    return [(p.program.digest, p.parent) for p in proposals]
