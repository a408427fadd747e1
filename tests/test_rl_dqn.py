"""The rl-losses evaluation (issue 10, item 2): a DQN on gymnax environments whose loss is the
interpreted program, compiled once for every candidate, scored so DQN is exactly 1, failing with a
reason rather than crashing; an exported loss trains exactly as the interpreter does."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

pytest.importorskip("gymnax")

from evolve.harness import Harness  # noqa: E402
from evolve.ops import INPUT  # noqa: E402
from evolve.program import Node, Program  # noqa: E402
from evolve.search_spaces import rl_envs, rl_loss_fn  # noqa: E402
from evolve.search_spaces.rl_dqn import DQNConfig, dqn_task, hand_written, rlax_convention  # noqa: E402
from evolve.search_spaces.rl_losses import RLLosses  # noqa: E402
from evolve.search_spaces.rl_ops import INPUT_NAMES  # noqa: E402

#: a tiny budget: 200 updates after the 500-step warm-up, one seed
TINY_STEPS = 700

pytestmark = pytest.mark.slow  # trains DQNs: about 90 s with a cold compilation cache


@pytest.fixture(scope="module")
def space():
    return RLLosses(config="cheap", train_steps=TINY_STEPS, seeds=1)


@pytest.fixture(scope="module")
def evaluator(space):
    """The evaluator of the tiny configuration: CartPole's DQN compiled once, DQN's reference run."""
    return space.build_evaluator()


def program(space, *ops):
    """A program of the space from (op, arguments) pairs after the inputs; the last is the output.
    Inputs: 0 q_param, 1 action, 2 s_tm1, 3 q_targ_param, 4 s_t, 5 reward, 6 discount, 7 constant."""
    nodes = [Node(INPUT) for _ in INPUT_NAMES] + [Node(name, args) for name, args in ops]
    return space.validate(Program(tuple(nodes), (len(nodes) - 1,), "rl-losses"))


def test_dqn_with_the_hand_written_loss_learns_cartpole_in_the_cheap_configuration():
    cheap = RLLosses(config="cheap").config
    env = rl_envs.make("CartPole-v1")
    harness = Harness([dqn_task(env, DQNConfig(steps=cheap.train_steps), hand_written(rl_loss_fn.dqn_loss))], jnp.asarray([1e-3]), range(cheap.seeds))
    (outcome,) = harness.run(jnp.zeros(1))
    trained = outcome["mean_return"][0]

    # the uniformly random policy on the same environment: about 22 per episode
    def random_episode_steps(key):
        def step(carry, key):
            state, done_before = carry
            k_action, k_env = jax.random.split(key)
            _, state, reward, _, done, _ = env.step(k_env, state, jax.random.randint(k_action, (), 0, env.num_actions))
            return (state, done_before | done), jnp.where(done_before, 0.0, reward)

        _, state = env.reset(key)
        _, rewards = jax.lax.scan(step, (state, jnp.bool_(False)), jax.random.split(key, 500))
        return rewards.sum()

    random_return = float(jnp.mean(jax.jit(jax.vmap(random_episode_steps))(jax.random.split(jax.random.key(0), 200))))
    assert 15 < random_return < 35
    # every seed at least three times the random policy (measured: about 180 against 22)
    assert np.all(trained > 3 * random_return), (trained, random_return)


def test_every_candidate_runs_the_one_compiled_dqn(space, evaluator):
    rng = np.random.default_rng(0)
    candidates = [space.known_loss(name) for name in ("dqn", "double_dqn", "dqn_reg", "dqn_clipped")]
    candidates += [space.random_program(rng) for _ in range(3)]
    results = evaluator.evaluate(candidates)
    (scorer,) = evaluator.scorers  # CartPole's states are narrow: "no states" programs train on the "states" DQN
    assert set(scorer.harnesses) <= {"states", "network inside"}
    assert all(harness.traces == 1 for harness in scorer.harnesses.values())
    assert results[0].fitness == 1.0 and results[0].metrics["score/CartPole-v1"] == 1.0
    assert results[0].metrics["hurdle_passed"] is True
    assert len({r.metrics["return/CartPole-v1"] for r in results[:4]}) > 1  # different losses train differently


def test_a_loss_without_gradient_is_a_failed_evaluation_with_its_reason(space, evaluator):
    zero = program(space, ("q_values", (0, 2)), ("select", (8, 1)), ("sub", (9, 9)))  # Q(s,a) - Q(s,a)
    (result,) = evaluator.evaluate([zero])
    assert result.failed and result.fitness == -np.inf
    assert "no gradient reaches the online network" in result.error


def test_a_loss_producing_nan_is_a_failed_evaluation_with_its_reason(space, evaluator):
    # Q(s,a) + (x - x) with x = exp(exp(exp(r)))^8 = (3.8e6)^8 on CartPole (r = 1): inf - inf
    nan = program(
        space, ("q_values", (0, 2)), ("select", (8, 1)), ("exp", (5,)), ("exp", (10,)), ("exp", (11,)),
        ("dot", (12, 12)), ("dot", (13, 13)), ("dot", (14, 14)), ("sub", (15, 15)), ("add", (9, 16)),
    )
    (result,) = evaluator.evaluate([nan])
    assert result.failed and "non-finite loss" in result.error and "CartPole-v1" in result.error


def test_a_diverging_q_is_a_failure_reason(evaluator):
    scorer = evaluator.scorers[0]
    runs = {"mean_return": np.array([[20.0]]), "episodes": np.array([[30.0]]), "finite": np.array([[1.0]]), "max_grad_norm": np.array([[1.0]])}
    assert scorer.summarize({**runs, "max_abs_q": np.array([[50.0]])}).error is None
    assert "Q diverged" in scorer.summarize({**runs, "max_abs_q": np.array([[3e4]])}).error


@pytest.mark.parametrize("name", ["dqn_reg", "dqn_clipped"])
def test_a_dqn_trained_with_the_exported_loss_matches_the_interpreters_training(space, evaluator, name):
    loss = space.known_loss(name)
    module: dict = {}
    exec(compile(space.export(loss, "jax"), f"{name}.py", "exec"), module)
    scorer = evaluator.scorers[0]
    exported = Harness([dqn_task(scorer.env, DQNConfig(steps=TINY_STEPS), rlax_convention(module["loss"]))], jnp.asarray([1e-3]), [0])
    (by_export,) = exported.run(jnp.zeros(1))
    row = evaluator.lower([loss])[0]
    (by_interpreter,) = scorer.harness_for(row).run(row)
    assert by_export["episodes"] == by_interpreter["episodes"]
    np.testing.assert_allclose(by_export["mean_return"], by_interpreter["mean_return"], rtol=1e-6)
    np.testing.assert_allclose(by_export["max_abs_q"], by_interpreter["max_abs_q"], rtol=1e-3)


def test_on_wide_observations_a_loss_without_state_ops_trains_on_the_narrow_dqn():
    """Catch's 50-number observations: DQN (no state op) trains on the "no states" DQN, a loss with
    a state op on the "states" one, each compiled once, DQN still exactly 1."""
    catch = RLLosses(suite="heldout", heldout_envs="Catch-bsuite", train_steps=TINY_STEPS, seeds=1)
    evaluator = catch.build_evaluator()
    with_state_op = program(  # DQN's loss plus <s_tm1, s_t> · 0.01
        catch, ("q_values", (0, 2)), ("select", (8, 1)), ("q_values", (3, 4)), ("max_list", (10,)), ("dot", (6, 11)),
        ("add", (5, 12)), ("l2_distance", (9, 13)), ("dot", (2, 4)), ("const_0.01", (7,)), ("dot", (15, 16)), ("add", (14, 17)),
    )
    results = evaluator.evaluate([catch.known_loss("dqn"), with_state_op, catch.known_loss("dqn_reg")])
    (scorer,) = evaluator.scorers
    assert [scorer.form(row) for row in evaluator.lower([catch.known_loss("dqn"), with_state_op])] == ["no states", "states"]
    assert {form: harness.traces for form, harness in scorer.harnesses.items()} == {"no states": 1, "states": 1}
    assert results[0].fitness == 1.0 and not results[1].failed and not results[2].failed
