"""The optimizers space: seeds train exactly like optax, export trains exactly like the interpreter,
failures are results, and a small real search runs through the engine."""

import importlib.util
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from evolve.engine import start_run
from evolve.errors import OptionError
from evolve.interpreter import Interpreter
from evolve.ops import CONST, INPUT
from evolve.plugin_manager import SpaceSpec, default_manager
from evolve.program import Node, Program
from evolve.store import RunConfig, Store

from evolve.search_spaces import optimizer_export, optimizer_programs, optimizer_tasks
from evolve.search_spaces.optimizer_training import optax_update, program_update, train

SMALL = {"steps": 20, "seeds": 1, "lr_grid": [0.001, 0.01, 0.1]}
VOCAB = optimizer_programs.vocabulary()
REFERENCES = {
    "sgd": lambda lr: optax.sgd(lr),
    "momentum": lambda lr: optax.sgd(lr, momentum=0.9),
    "adam": lambda lr: optax.adam(lr),
    "lion": lambda lr: optax.lion(lr),
}


@pytest.fixture(scope="module")
def space():
    return default_manager().make_space(SpaceSpec("optimizers", SMALL))


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


def run_program(program, task, steps, lr, seed=0):
    lowered = jax.tree.map(lambda a: jnp.asarray(a[0]), Interpreter(VOCAB).lower([program]))
    init, update = program_update(Interpreter(VOCAB), lowered, jnp.float32(lr))
    return jax.jit(lambda key: train(task, steps, key, init, update))(jax.random.key(seed))


def run_optax(tx, task, steps, seed=0):
    init, update = optax_update(tx)
    return jax.jit(lambda key: train(task, steps, key, init, update))(jax.random.key(seed))


@pytest.mark.parametrize("name", list(REFERENCES))
def test_seed_trains_like_optax(name):
    for task in (optimizer_tasks.logistic_regression(), optimizer_tasks.mlp("mlp", (8, 32, 4))):
        ours = run_program(optimizer_programs.SEEDS[name](), task, 30, 0.03)
        theirs = run_optax(REFERENCES[name](0.03), task, 30)
        assert float(task.loss(theirs)) < float(task.loss(task.init(jax.random.key(0))))
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)


def test_exported_transformation_trains_exactly_like_the_interpreter(tmp_path, space):
    task = optimizer_tasks.mlp("mlp", (8, 32, 4))
    for program in (optimizer_programs.adam(), optimizer_programs.lion(), every_op_program()):
        interpreted = run_program(program, task, 15, 0.05)
        live = run_optax(optimizer_export.to_optax(program, VOCAB, 0.05), task, 15)
        path = tmp_path / "exported_optimizer.py"
        path.write_text(space.export(program, "optax"))
        spec = importlib.util.spec_from_file_location("exported_optimizer", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        from_source = run_optax(module.optimizer(0.05), task, 15)
        # Same ops, same order; XLA fuses the two graphs differently, so float32 rounding may differ.
        np.testing.assert_allclose(live, interpreted, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(from_source, interpreted, rtol=1e-5, atol=1e-6)


def test_exported_optimizer_works_on_parameter_trees():
    tx = optimizer_export.to_optax(optimizer_programs.lion(), VOCAB, 0.1)
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
    for bad in ({"seed_with": "adamw"}, {"lr_grid": [0.1, -1]}, {"lr_grid": 0.1}, {"suite": "nope"}, {"steps": "10"}):
        with pytest.raises(OptionError):
            default_manager().make_space(SpaceSpec("optimizers", {**SMALL, **bad}))


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
    space.evaluate([space.random_program(rng) for _ in range(3)] + [every_op_program()])
    assert space._trainer._cache_size() == 1  # one compilation per process, whatever the candidates
