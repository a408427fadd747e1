"""The optimizers space: seeds train exactly like optax, export trains exactly like the interpreter,
failures are results, fitnesses are those of the code before the shared harness (golden values),
the grammar never builds the evaluator, and a small real search runs through the engine."""

import dataclasses
import importlib.util
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from evolve.engine import start_run
from evolve.errors import OptionError
from evolve.harness import Harness, program_rows
from evolve.interpreter import Interpreter
from evolve.ops import CONST, INPUT
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.program import Node, Program
from evolve.store import RunConfig, Store

from evolve.search_spaces import optimizer_export, optimizer_optax, optimizer_programs, optimizer_tasks, optimizers
from evolve.search_spaces.optimizer_training import interpreted, optax_update, training_task

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "optimizers.json")
SMALL = {"steps": 30, "seeds": 1}  # the golden file's "train-cheap" setting
VOCAB = optimizer_programs.vocabulary()
REFERENCES = {
    "sgd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "adam": lambda lr: optax.adam(lr),
    "lion": lambda lr: optax.lion(lr),
}


def make_space(options):
    return PluginManager().make_space(SpaceSpec("optimizers", options))


@pytest.fixture(scope="module")
def space():
    return make_space(SMALL)


@pytest.fixture(scope="module")
def golden():
    with open(GOLDEN) as f:
        return json.load(f)


def every_op_program() -> Program:
    """A program that uses every op of the vocabulary (for the export checks)."""
    g, p, m, v, t = range(5)
    nodes = [Node(INPUT)] * 5 + [Node(CONST, (), 0.9), Node(CONST, (), 0.5)]
    c9, c5 = 5, 6

    def add(op, *args):
        nodes.append(Node(op, args))
        return len(nodes) - 1

    m2 = add("interpolate", g, m, c9)
    v2 = add("max", add("square", g), add("mul", v, c9))
    a = add("div", m2, add("add", add("sqrt", v2), add("exp", add("sub", add("log", add("abs", t)), add("abs", t)))))
    b = add("clip", add("sign", m2), c5)
    u = add("add", add("min", a, b), add("mul", p, add("exp", add("log", c5))))
    program = Program(tuple(nodes), (u, m2, v2), optimizer_programs.SPACE).pruned().validate(VOCAB)
    assert {n.op for n in program.nodes} - {INPUT, CONST} == {op.name for op in VOCAB.ops}
    return program


#: problems for the training-equivalence checks, trained STEPS steps at LR from seed 0
PROBLEMS = {"logistic-regression": optimizer_tasks.logistic_regression(), "mlp": optimizer_tasks.mlp("mlp", (8, 32, 4))}
STEPS, LR = 30, 0.03


def params_harness(problem, optimizer) -> Harness:
    """`problem` trained in the search's own loop (one harness task), reporting the final parameters."""
    task = dataclasses.replace(training_task(problem, STEPS, optimizer), score=lambda program, lr, state: state[0])
    return Harness([task], jnp.asarray([LR], jnp.float32), [0])


@pytest.fixture(scope="module")
def by_interpreter():
    """(program, problem name) -> final parameters; one compiled harness per problem, programs as data."""
    harnesses = {name: params_harness(problem, interpreted(Interpreter(VOCAB))) for name, problem in PROBLEMS.items()}
    return lambda program, name: harnesses[name].run(program_rows(Interpreter(VOCAB).lower([program]))[0])[0][0, 0]


def by_optax(make_tx, name):
    """make_tx(lr) -> an optax transformation, trained in the same loop as programs (compiled anew)."""
    return params_harness(PROBLEMS[name], lambda _, lr: optax_update(make_tx(lr))).run(None)[0][0, 0]


@pytest.mark.parametrize("name", list(REFERENCES))
def test_seed_trains_like_optax(name, by_interpreter):
    for problem_name, problem in PROBLEMS.items():
        ours = by_interpreter(optimizer_programs.SEEDS[name](), problem_name)
        theirs = by_optax(REFERENCES[name], problem_name)
        assert float(problem.loss(theirs)) < float(problem.loss(problem.init(jax.random.key(0))))
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_exported_transformation_trains_exactly_like_the_interpreter(tmp_path, space, by_interpreter):
    for program in (optimizer_programs.adam(), optimizer_programs.lion(), every_op_program()):
        interpreted_params = by_interpreter(program, "mlp")
        live = by_optax(lambda lr: optimizer_optax.to_optax(program, VOCAB, lr), "mlp")
        path = tmp_path / "exported_optimizer.py"
        path.write_text(space.export(program, "optax"))
        spec = importlib.util.spec_from_file_location("exported_optimizer", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from_source = by_optax(module.optimizer, "mlp")
        # Same ops, same order; XLA fuses the two graphs differently, so float32 rounding may differ.
        np.testing.assert_allclose(live, interpreted_params, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(from_source, interpreted_params, rtol=1e-5, atol=1e-6)


def test_exported_optimizer_works_on_parameter_trees():
    tx = optimizer_export.to_optax(optimizer_programs.lion(), VOCAB, 0.1)  # the name the README documents
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    grads = {"w": jnp.full((2, 3), 2.0), "b": -jnp.ones(3)}
    updates, state = tx.update(grads, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * (1 + 1e-3), rtol=1e-6)
    np.testing.assert_allclose(updates["b"], 0.1, rtol=1e-6)
    with pytest.raises(ValueError, match="pass params"):
        tx.update(grads, state)


def test_adam_scores_one_and_the_seeds_are_ordered(space):
    fitness = {name: e.fitness for name, e in zip(REFERENCES, space.evaluate([f() for f in optimizer_programs.SEEDS.values()]))}
    assert fitness["adam"] == 1.0
    assert fitness["sgd"] < fitness["momentum"]


def test_non_finite_program_is_a_failure_not_a_crash(space):
    nodes = [Node(INPUT)] * 5 + [Node(CONST, (), 80.0), Node("exp", (5,)), Node("square", (6,))]
    program = Program(tuple(nodes), (7, 2, 3), optimizer_programs.SPACE).validate(VOCAB)
    (evaluation,) = space.evaluate([program])
    assert evaluation.failed and "non-finite" in evaluation.error and evaluation.fitness == -math.inf


def test_describe_export_and_options(space):
    assert space.describe(optimizer_programs.lion()) == "m' = interpolate(g, m, 0.99); u = sign(interpolate(g, m, 0.9)) + (0.001*p)"
    swapped = Program(optimizer_programs.sgd().nodes, (0, 3, 0), optimizer_programs.SPACE)  # m' = v, v' = g
    assert space.describe(swapped) == "m' = v; v' = g; u = g"
    assert Program.from_json(space.export(optimizer_programs.adam(), "json")) == optimizer_programs.adam()
    with pytest.raises(OptionError, match="cannot export"):
        space.export(optimizer_programs.sgd(), "latex")
    bad_options = (
        {"seed_with": "adamw"}, {"lr_grid": [0.1, -1]}, {"lr_grid": 0.1}, {"lr_grid": []}, {"suite": "nope"},
        {"steps": "10"}, {"steps": 0}, {"seeds": 0}, {"max_nodes": 10},
    )
    for bad in bad_options:
        with pytest.raises(OptionError):
            make_space({**SMALL, **bad})
    assert set(optimizers.SUITES) == set(optimizer_tasks.SUITES)


def test_fingerprints_tell_behaviours_apart(space):
    a, b = optimizer_programs.momentum(), optimizer_programs.momentum(0.5)
    commuted = Program(a.nodes[:-1] + (Node("add", tuple(reversed(a.nodes[-1].inputs))),), a.outputs, a.space)
    fa, fb, fc = space.fingerprints([a, b, commuted])
    assert fa != fb and fa == fc


def test_small_search_through_the_engine(space, tmp_path):
    config = RunConfig(
        "optimizers", SMALL, strategy_options={"population_size": 6, "tournament_size": 2},
        workers=3, budget=14, seed=0,
    )
    store = Store(str(tmp_path / "run.db"))
    assert start_run(store, config).execute() == "budget"
    individuals = store.individuals(1)
    assert store.counts(1)[0] == 14
    assert any(i.parent is not None for i in individuals)
    best = store.top(1, 1)[0]
    assert best.evaluation.fitness >= 1.0  # Adam is a seed, and scores exactly 1
    assert "u = " in space.describe(best.program)


def test_candidates_never_trigger_a_compile(space):
    rng = np.random.default_rng(1)
    space.evaluate([optimizer_programs.sgd()])
    harness = space.evaluator.harness
    assert harness.traces == len(harness.tasks)  # Adam's reference run compiled every task
    space.evaluate([space.random_program(rng) for _ in range(3)] + [every_op_program()])
    assert harness.traces == len(harness.tasks)  # and no candidate compiles again


def test_fitness_is_unchanged_from_the_code_before_the_harness(space, golden):
    """Bit for bit: the same programs get the same fitnesses and errors as the code of before (the
    default setting is checked by benchmarks/optimizer_eval.py --golden)."""
    programs = {name: Program.from_dict(d) for name, d in golden["programs"].items()}
    assert space.fingerprints(list(programs.values())) == [golden["fingerprints"][name] for name in programs]
    for setting, built in (("train-cheap", space), ("heldout-cheap", None)):
        assert golden["settings"][setting] == (SMALL if built else {**SMALL, "suite": "heldout"})
        built = built or make_space(golden["settings"][setting])
        expected = golden["fitness"][setting]
        got = built.evaluate([programs[name] for name in expected])
        for (name, want), evaluation in zip(expected.items(), got):
            fitness = None if math.isinf(evaluation.fitness) else evaluation.fitness
            assert (fitness, evaluation.error) == (want["fitness"], want["error"]), (setting, name)


GRAMMAR_ONLY = """
import sys, time
import numpy as np
start = time.perf_counter()
from evolve.search_spaces import optimizer_programs, optimizers
space = optimizers.Optimizers()
rng = np.random.default_rng(0)
program = optimizer_programs.adam()
for _ in range(20):
    program = space.mutate(program, rng)
    space.random_program(rng)
for fmt in space.export_formats:
    space.export(program, fmt)
space.describe(program)
print(time.perf_counter() - start, "jax" in sys.modules, "_evaluator" in space.__dict__)
"""


def test_the_grammar_is_light():
    """Building the space, mutating, describing and exporting import no JAX and build no evaluator;
    fingerprints compile their probe, never the training."""
    out = subprocess.run([sys.executable, "-c", GRAMMAR_ONLY], capture_output=True, text=True, check=True).stdout.split()
    seconds, imported_jax, built_evaluator = float(out[0]), out[1] == "True", out[2] == "True"
    assert not imported_jax and not built_evaluator
    assert seconds < 1.0, f"the grammar took {seconds:.2f} s"
    fresh = make_space({})
    fresh.fingerprints([optimizer_programs.adam(), optimizer_programs.lion()])
    assert "_evaluator" not in fresh.__dict__
