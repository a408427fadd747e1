"""evolve.testing: the contract check plugin authors run on their own spaces and strategies accepts the
built-in ones and an honest space, and names the method and the rule each deliberately broken one breaks."""

import dataclasses
import math
import re

import numpy as np
import pytest

from evolve.errors import PluginError
from evolve.ops import Input, Vocabulary, elementwise_ops
from evolve.plugin_manager import PluginManager
from evolve.program import Program
from evolve.space import Evaluation, Evaluator, SearchSpace
from evolve.strategy import Proposal, Strategy, initial_proposals
from evolve.testing import ContractError, check_search_space, check_strategy

NUMPY_OPS = {"add": np.add, "sub": np.subtract, "mul": np.multiply}
POINTS = np.linspace(-1.0, 1.0, 8)


class Honest(SearchSpace):
    """Find x*x + x on 8 points: a light grammar, and an evaluator that runs programs with numpy."""

    def __init__(self, max_nodes: int = 12):
        self._vocab = Vocabulary((Input("x", "real"),), ("real",), elementwise_ops(list(NUMPY_OPS), "real"), max_nodes)

    @property
    def vocabulary(self):
        return self._vocab

    def build_evaluator(self):
        return HonestEvaluator()


class HonestEvaluator(Evaluator):
    def evaluate(self, programs):
        return [self.score(p) for p in programs]

    def score(self, program):
        values = [POINTS]
        for node in program.nodes[1:]:
            values.append(NUMPY_OPS[node.op](*(values[j] for j in node.inputs)))
        error = float(np.mean((values[program.outputs[0]] - (POINTS**2 + POINTS)) ** 2))
        return Evaluation(-error, {"mse": error, "solved": error < 1e-12})


class SelfEvaluating(Honest):
    """The other way to provide evaluation: override `evaluate` on the space itself."""

    def evaluate(self, programs):
        return HonestEvaluator().evaluate(programs)


def test_builtin_spaces_keep_the_contract():
    manager = PluginManager()
    for name, options in [("symbolic-regression", {"problem": "nguyen-1"}), ("sleep", {"seconds": 0})]:
        report = check_search_space(manager.lookup("search space", name), options, programs=10)
        assert any(line.startswith("evaluate: batches of 1 and") for line in report.checks), report


@pytest.mark.parametrize("space", [Honest, SelfEvaluating, Honest(max_nodes=8)])
def test_an_honest_space_keeps_the_contract(space):
    report = check_search_space(space)
    assert str(report).splitlines()[0] == f"{'Honest' if space is not SelfEvaluating else 'SelfEvaluating'} keeps the contract:"
    assert len(report.checks) == 11


# ---------------------------------------------------------------------------- broken spaces
# Each breaks one rule of the contract; the check must name the method and the rule.


class OneTooMany(HonestEvaluator):
    def evaluate(self, programs):
        return super().evaluate(programs) + [Evaluation(0.0)]


class OneTooFew(HonestEvaluator):
    def evaluate(self, programs):
        return super().evaluate(programs)[:-1]


class NanFitness(HonestEvaluator):
    def evaluate(self, programs):
        return [dataclasses.replace(e, fitness=math.nan) for e in super().evaluate(programs)]


class InfiniteFitness(HonestEvaluator):
    def evaluate(self, programs):
        return [dataclasses.replace(e, fitness=math.inf) for e in super().evaluate(programs)]


class ObjectInMetrics(HonestEvaluator):
    def evaluate(self, programs):
        return [dataclasses.replace(e, metrics={"program": p}) for e, p in zip(super().evaluate(programs), programs)]


class AlwaysFails(HonestEvaluator):
    def evaluate(self, programs):
        return [Evaluation.failure("no GPU") for _ in programs]


class NumpyFitness(HonestEvaluator):
    """Not broken: the evaluation boundary converts numpy scalars, so the contract allows them."""

    def evaluate(self, programs):
        return [dataclasses.replace(e, fitness=np.float32(e.fitness), metrics={"rows": np.int64(8)}) for e in super().evaluate(programs)]


def evaluated_by(evaluator_class):
    return type(evaluator_class.__name__, (Honest,), {"build_evaluator": lambda self: evaluator_class()})


class ParentUnchanged(Honest):
    def mutate(self, program, rng):
        return program


class UnseededMutation(Honest):
    def mutate(self, program, rng):
        return super().mutate(program, np.random.default_rng())


class NegativeResolution(Honest):
    fitness_resolution = -0.1


class UnseededRandomProgram(Honest):
    def random_program(self, rng):
        return super().random_program(np.random.default_rng())


class InvalidChild(Honest):
    def mutate(self, program, rng):
        return Program(program.nodes, (len(program.nodes),), program.space)  # an output past the last node


class IntFingerprints(Honest):
    def fingerprints(self, programs):
        return [int(p.digest[:8], 16) for p in programs]


class BatchFingerprints(Honest):
    def fingerprints(self, programs):
        return [f"{p.digest}:{k}" for k, p in enumerate(programs)]


class IdentityFingerprints(Honest):
    def fingerprints(self, programs):
        return [str(id(p)) for p in programs]


class DescribeRaises(Honest):
    def describe(self, program):
        raise RuntimeError("sympy is not installed")


class BytesExport(Honest):
    def export(self, program, format):
        return program.to_json().encode()


class AnyFormat(Honest):
    export_formats = ("json", "text")

    def export(self, program, format):
        return program.to_json() if format == "json" else repr(program)


class EagerEvaluator(Honest):
    def __init__(self):
        super().__init__()
        self.evaluator.evaluate([])  # the heavy half, built with the grammar


class FingerprintsByEvaluation(Honest):
    def fingerprints(self, programs):
        return [repr(e.fitness) for e in self.evaluate(programs)]


class NotAVocabulary(Honest):
    @property
    def vocabulary(self):
        return {"inputs": ["x"]}


BROKEN_SPACES = [
    (evaluated_by(OneTooMany), r"OneTooMany\.evaluate: returned 2 evaluations for a batch of 1 program;"),
    (evaluated_by(OneTooFew), r"OneTooFew\.evaluate: returned 0 evaluations for a batch of 1 program;"),
    (evaluated_by(NanFitness), r"NanFitness\.evaluate: random program 0: fitness is NaN"),
    (evaluated_by(InfiniteFitness), r"InfiniteFitness\.evaluate: random program 0: fitness is \+inf"),
    (evaluated_by(ObjectInMetrics), r"ObjectInMetrics\.evaluate: random program 0: metrics are not JSON-able"),
    (evaluated_by(AlwaysFails), r"AlwaysFails\.evaluate: every one of 40 programs failed; most common reason \(40 times\): no GPU"),
    (ParentUnchanged, r"ParentUnchanged\.mutate: returned random program 0 unchanged"),
    (UnseededMutation, r"UnseededMutation\.mutate: gave two different children of random program \d+ for the same numpy seed"),
    (UnseededRandomProgram, r"UnseededRandomProgram\.random_program: gave other programs for the same numpy seed"),
    (InvalidChild, r"InvalidChild\.mutate: the child of random program 0 is not a valid program of this space: output 0"),
    (IntFingerprints, r"IntFingerprints\.fingerprints: returned an int for random program 0, not a str"),
    (BatchFingerprints, r"BatchFingerprints\.fingerprints: gave random program 1 another fingerprint alone than in a batch"),
    (IdentityFingerprints, r"IdentityFingerprints\.fingerprints: gave programs read back from JSON other fingerprints"),
    (DescribeRaises, r"DescribeRaises\.describe raised RuntimeError: sympy is not installed"),
    (BytesExport, r"BytesExport\.export: returned a bytes for random program 0 in format 'json', not a str"),
    (AnyFormat, r"AnyFormat\.export: accepted the unknown format 'no-such-format'"),
    (EagerEvaluator, r"EagerEvaluator\.build_evaluator: the constructor built the evaluator"),
    (FingerprintsByEvaluation, r"FingerprintsByEvaluation\.build_evaluator: the evaluator was built before any evaluation \(by fingerprints"),
    (NotAVocabulary, r"NotAVocabulary\.vocabulary: is a dict, not an evolve\.ops\.Vocabulary"),
    (NegativeResolution, r"NegativeResolution\.fitness_resolution: must be a finite number of at least 0, got -0\.1"),
]


@pytest.mark.parametrize("space, message", BROKEN_SPACES, ids=[s.__name__ for s, _ in BROKEN_SPACES])
def test_a_broken_space_is_named_with_the_rule_it_breaks(space, message):
    with pytest.raises(ContractError, match=message) as caught:
        check_search_space(space)
    assert isinstance(caught.value, PluginError)  # the CLI's one-line family
    assert "\n" not in str(caught.value)


def test_numpy_scalars_are_within_the_contract():
    check_search_space(evaluated_by(NumpyFitness))


def test_what_is_not_a_space_is_refused():
    with pytest.raises(ContractError, match="dict is not a subclass of evolve.SearchSpace"):
        check_search_space(dict)
    with pytest.raises(ContractError, match="str is not an evolve.SearchSpace"):
        check_search_space("symbolic-regression")


# ---------------------------------------------------------------------------- strategies


class Counting(Strategy):
    """Honest: the parent is chosen by how many programs it proposed so far, so its state is that count,
    which `recover` rebuilds from the history and the pending programs."""

    def __init__(self, space, population_size: int = 8):
        self.space = space
        self.population_size = population_size
        self.proposed = 0

    def propose(self, population, n, rng):
        if population.initializing:
            out = initial_proposals(self.space, population, n, rng)
        else:
            members = list(population)
            parents = [members[(self.proposed + k) % len(members)] for k in range(n)]
            out = [Proposal(self.space.mutate(p.program, rng), p.id, {"count": self.proposed}) for p in parents]
        self.proposed += len(out)
        return out

    def recover(self, history, pending):
        self.proposed = len(history) + len(pending)


class Forgetful(Counting):
    """Does not rebuild its count: a resumed run would choose other parents."""

    def recover(self, history, pending):
        pass


class Unseeded(Counting):
    def propose(self, population, n, rng):
        return super().propose(population, n, np.random.default_rng())


class TooManyProposals(Counting):
    def propose(self, population, n, rng):
        return super().propose(population, n + 1, rng)


class UnknownParent(Counting):
    def propose(self, population, n, rng):
        return [dataclasses.replace(p, parent=10_000) for p in super().propose(population, n, rng)]


class NeverProposes(Counting):
    def propose(self, population, n, rng):
        return []


class ArrayInfo(Counting):
    def propose(self, population, n, rng):
        return [dataclasses.replace(p, info={"rng": rng}) for p in super().propose(population, n, rng)]


class ObserveRaises(Counting):
    def observe(self, individuals):
        raise KeyError("fitness")


def test_builtin_strategies_keep_the_contract(nguyen1):
    manager = PluginManager()
    check_strategy(manager.lookup("strategy", "regularized-evolution"), nguyen1, {"population_size": 20})
    check_strategy(manager.lookup("strategy", "random-search"), nguyen1)
    report = check_strategy(manager.lookup("strategy", "pam-rt"), nguyen1, {"population_size": 20},
                            predictor=manager.lookup("predictor", "oracle"))
    assert re.search(r"recover: from 36 individuals and 4 pending, the same 4 next proposals", str(report)), report


def test_an_honest_strategy_keeps_the_contract():
    report = check_strategy(Counting, Honest)
    assert [line.split(":")[0] for line in report.checks] == ["propose", "observe", "propose", "recover"]


BROKEN_STRATEGIES = [
    (Forgetful, r"Forgetful\.recover: after recover\(history, pending\) it proposed other programs than the uninterrupted run"),
    (Unseeded, r"Unseeded\.propose: a second run with the same seed proposed other programs"),
    (TooManyProposals, r"TooManyProposals\.propose: propose returned 5 proposals when asked for 4"),
    (UnknownParent, r"UnknownParent\.propose: proposal 0's parent is 10000, not None or the id of an individual of this run"),
    (NeverProposes, r"NeverProposes\.propose: returned no proposals with nothing in flight"),
    (ArrayInfo, r"ArrayInfo\.propose: proposal 0's info cannot be stored as JSON"),
    (ObserveRaises, r"ObserveRaises\.observe raised KeyError: 'fitness'"),
]


@pytest.mark.parametrize("strategy, message", BROKEN_STRATEGIES, ids=[s.__name__ for s, _ in BROKEN_STRATEGIES])
def test_a_broken_strategy_is_named_with_the_rule_it_breaks(strategy, message):
    with pytest.raises(ContractError, match=message):
        check_strategy(strategy, Honest())
