"""The compile-once training harness: a toy task trains exactly as numpy trains it, every grid point
and seed is its own run, a new program is never a new compilation, and the reference scores 1."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evolve.errors import OptionError
from evolve.harness import Harness, ReferenceNormalizer, Task, program_rows

CURVATURE = np.array([0.5, 1.0, 2.0, 4.0])
LRS = np.array([0.05, 0.1, 0.2], np.float32)
SEEDS = [3, 7]
STEPS = 12


def quadratic_task(name: str = "quadratic", steps: int = STEPS) -> Task:
    """Loss 0.5 sum(c x^2), trained by heavy-ball momentum written by hand, with the program as data:
    program = [momentum, scale]; hyperparameters = {"lr": scalar}; step t uses lr * scale / (1 + t)."""
    curvature = jnp.asarray(CURVATURE, jnp.float32)

    def loss(x):
        return 0.5 * jnp.sum(curvature * x**2)

    def init(program, hp, key):
        x = jax.random.normal(key, (4,))
        return x, jnp.zeros(4), loss(x)

    def step(program, hp, state, t):
        x, velocity, initial = state
        velocity = program[0] * velocity + curvature * x
        return x - hp["lr"] * program[1] * velocity / (1.0 + t), velocity, initial

    def score(program, hp, state):
        x, _, initial = state
        return {"initial": initial, "final": loss(x), "x": x}

    return Task(name, init, step, score, steps)


def numpy_training(program, lr: float, seed: int) -> tuple[float, np.ndarray]:
    """The same training in float64 numpy, from the same initialisation."""
    x = np.asarray(jax.random.normal(jax.random.key(seed), (4,)), np.float64)
    velocity = np.zeros(4)
    for t in range(STEPS):
        velocity = program[0] * velocity + CURVATURE * x
        x = x - lr * program[1] * velocity / (1.0 + t)
    return 0.5 * float(np.sum(CURVATURE * x**2)), x


def test_every_grid_point_and_seed_trains_like_numpy():
    harness = Harness([quadratic_task()], {"lr": LRS}, SEEDS)
    program = np.array([0.9, 1.0], np.float32)
    (outcome,) = harness.run(program)
    assert outcome["final"].shape == (len(LRS), len(SEEDS)) and outcome["x"].shape == (len(LRS), len(SEEDS), 4)
    for h, lr in enumerate(LRS):
        for s, seed in enumerate(SEEDS):
            loss, x = numpy_training(program, float(lr), seed)
            np.testing.assert_allclose(outcome["x"][h, s], x, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(outcome["final"][h, s], loss, rtol=1e-5)
    assert outcome["final"][0, 0] != outcome["final"][0, 1]  # seeds start apart
    np.testing.assert_array_equal(outcome["initial"][0], outcome["initial"][2])  # one start per seed at every lr


def test_new_programs_reuse_the_compiled_tasks():
    harness = Harness([quadratic_task("a"), quadratic_task("b", steps=5)], {"lr": LRS}, SEEDS)
    programs = np.array([[0.9, 1.0], [0.0, 0.5], [0.5, -1.0], [0.99, 0.1]], np.float32)
    finals = [harness.run(row)[1]["final"] for row in program_rows(programs)]
    assert harness.traces == 2  # once per task, whatever the programs
    assert len({f.tobytes() for f in finals}) == len(programs)  # and each program really ran


def test_reference_scores_exactly_one_and_better_programs_more():
    harness = Harness([quadratic_task()], {"lr": LRS}, SEEDS)

    def summarize(outcome):  # the best lr's mean final loss, and the mean initial loss
        return outcome["initial"].astype(np.float64).mean(), outcome["final"].astype(np.float64).mean(axis=1).min()

    def relative(summary, reference):
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.log(reference[0] / summary[1]) / np.log(reference[0] / reference[1]))

    plain_sgd = np.array([0.0, 1.0], np.float32)
    normalizer = ReferenceNormalizer(harness, plain_sgd, summarize, relative)
    _, (own,) = normalizer.score(plain_sgd)
    assert own == 1.0
    _, (momentum,) = normalizer.score(np.array([0.9, 1.0], np.float32))
    _, (standing_still,) = normalizer.score(np.array([0.0, 0.0], np.float32))
    assert momentum > 1.0 and standing_still == 0.0
    assert harness.traces == 1

    with pytest.raises(OptionError, match="does not score exactly 1 on quadratic"):
        ReferenceNormalizer(harness, np.array([0.0, 0.0], np.float32), summarize, relative)  # 0/0: no progress

    def refuse(summaries):
        raise OptionError("the reference is refused")

    with pytest.raises(OptionError, match="refused"):
        ReferenceNormalizer(harness, plain_sgd, summarize, relative, check_reference=refuse)


@pytest.mark.parametrize(
    "tasks, grid, seeds, message",
    [
        ([], {"lr": LRS}, SEEDS, "unique names"),
        ([quadratic_task(), quadratic_task()], {"lr": LRS}, SEEDS, "unique names"),
        ([quadratic_task(steps=0)], {"lr": LRS}, SEEDS, "at least one step"),
        ([quadratic_task()], {"lr": LRS, "decay": np.ones(2)}, SEEDS, "leading axis"),
        ([quadratic_task()], {"lr": np.float32(0.1)}, SEEDS, "leading axis"),
        ([quadratic_task()], {"lr": LRS}, [], "seeds"),
    ],
)
def test_bad_settings_are_refused_with_one_clear_error(tasks, grid, seeds, message):
    with pytest.raises(OptionError, match=message):
        Harness(tasks, grid, seeds)
