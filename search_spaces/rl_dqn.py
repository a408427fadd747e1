"""A DQN whose loss is a program, trained inside one jitted `lax.scan` (issue 10, item 2).

This is the inner loop of Co-Reyes et al. 2021 (brain_autorl `custom_dqn.py`, `run_search.py`):
a replay buffer, a target network copied periodically, epsilon-greedy exploration decaying
linearly, and one gradient step per environment step once the buffer holds a warm-up's worth of
transitions. It is written as a `Task` of the shared harness (evolve/harness.py): `init`, `step`
(one environment step, and one update after the warm-up) and `score` (the mean return of the last
training episodes, and what went wrong). The loss is an argument `loss(program, online, target,
batch)`, the program being arrays, so every candidate runs the same compiled function: one compile
per worker and environment. Seeds are vmapped by the harness.

Sizes, scaled down for a 2-core CPU (the original's in brackets):

    Q-network      MLP 64-64, ReLU               [MLP 256-256, ReLU]
    optimizer      Adam, lr 1e-3                 [Adam, lr 1e-4]
    batch          32                            [32]
    discount       0.99                          [0.99]
    replay         10,000 transitions, uniform   [1e6, reverb prioritized table, priorities never updated]
    warm-up        500 transitions               [min_replay_size 1,000]
    target copy    every 100 updates             [every 100 learner steps]
    epsilon        1 -> 0.02 linearly over the environment's schedule (rl_envs)   [the same]
    updates        one per environment step      [samples_per_insert 32 / batch 32 = 1]
    budget         steps per environment, set by the configuration  [400 episodes / 6e5 steps]

The larger learning rate makes up for the shorter budget (a few ten thousand steps, not hundreds of
thousands).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from evolve import harness
from evolve.search_spaces.rl_envs import Environment

#: loss(program arrays, online params, target params, batch) -> scalar. batch: s_tm1 [B, obs_dim]
#: f32, a_tm1 [B] i32, r_t [B] f32, discount_t [B] f32 (environment discount x gamma), s_t [B, obs_dim].
LossFn = Callable[[Any, Any, Any, dict], jax.Array]
#: q_apply(params, observations [B, obs_dim]) -> Q-values [B, num_actions]
QApply = Callable[[Any, jax.Array], jax.Array]

#: the parts of a run's state an update changes
LEARNER = ("online", "target", "opt_state", "finite", "max_grad_norm")
#: the most |Q| a run may reach before it counts as diverged: 100 times the largest |Q| these tasks
#: can justify (rewards of magnitude <= 1 per step with discount 0.99 give |Q| <= 100)
Q_LIMIT = 1e4


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """The inner loop's sizes (see the module docstring for the original's)."""

    steps: int = 20_000
    hidden: tuple[int, ...] = (64, 64)
    learning_rate: float = 1e-3
    batch_size: int = 32
    gamma: float = 0.99
    buffer_size: int = 10_000
    warmup: int = 500
    target_period: int = 100
    epsilon_floor: float = 0.02
    #: the score is the mean return of this many last training episodes (the original's 50)
    last_episodes: int = 50


def q_network(hidden: tuple[int, ...], obs_dim: int, num_actions: int) -> tuple[Callable, QApply]:
    """(init(key) -> params, q_apply): an MLP with ReLU, LeCun-normal weights and zero biases."""
    sizes = (obs_dim, *hidden, num_actions)

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [
            {"w": jax.random.normal(k, (n_in, n_out), jnp.float32) / np.sqrt(n_in), "b": jnp.zeros(n_out, jnp.float32)}
            for k, n_in, n_out in zip(keys, sizes[:-1], sizes[1:])
        ]

    def q_apply(params, observations):
        x = observations
        for layer in params[:-1]:
            x = jax.nn.relu(x @ layer["w"] + layer["b"])
        return x @ params[-1]["w"] + params[-1]["b"]

    return init, q_apply


def dqn_task(env: Environment, config: DQNConfig, make_loss: Callable[[QApply], LossFn]) -> harness.Task:
    """DQN on `env` for `config.steps` environment steps, as a harness task.

    make_loss(q_apply) gives the loss the updates minimize (the interpreted program, or a hand-written
    one). The harness's grid point is the learning rate.

    Outcome per run (float32 scalars): mean_return (of the last `last_episodes` finished episodes,
    NaN when none finished), episodes (finished), finite (1 when every loss and gradient was finite),
    max_abs_q (the largest |Q| seen while acting), max_grad_norm (the largest gradient norm of an
    update; 0 means the loss never reached the online network)."""
    init_params, q_apply = q_network(config.hidden, env.obs_dim, env.num_actions)
    loss_fn = make_loss(q_apply)
    epsilon_steps = max(1, min(env.spec.epsilon_steps, config.steps // 2))
    last = config.last_episodes

    def optimizer(lr):
        return optax.adam(lr)

    def init(program, lr, key):
        key, k_params, k_env = jax.random.split(key, 3)
        params = init_params(k_params)
        obs, env_state = env.reset(k_env)
        n = config.buffer_size
        return {
            "key": key,
            "obs": obs,
            "env_state": env_state,
            "online": params,
            "target": params,
            "opt_state": optimizer(lr).init(params),
            "buffer": {
                "s_tm1": jnp.zeros((n, env.obs_dim), jnp.float32),
                "a_tm1": jnp.zeros((n,), jnp.int32),
                "r_t": jnp.zeros((n,), jnp.float32),
                "discount_t": jnp.zeros((n,), jnp.float32),
                "s_t": jnp.zeros((n, env.obs_dim), jnp.float32),
            },
            "episode_return": jnp.float32(0),
            "returns": jnp.zeros((last,), jnp.float32),
            "episodes": jnp.int32(0),
            "finite": jnp.bool_(True),
            "max_abs_q": jnp.float32(0),
            "max_grad_norm": jnp.float32(0),
        }

    def update(program, lr, learner, batch):
        loss, grads = jax.value_and_grad(loss_fn, argnums=1)(program, learner["online"], learner["target"], batch)
        updates, opt_state = optimizer(lr).update(grads, learner["opt_state"], learner["online"])
        grad_norm = optax.tree.norm(grads)
        return {
            **learner,
            "online": optax.apply_updates(learner["online"], updates),
            "opt_state": opt_state,
            "finite": learner["finite"] & jnp.isfinite(loss) & jnp.isfinite(grad_norm),
            "max_grad_norm": jnp.maximum(learner["max_grad_norm"], jnp.nan_to_num(grad_norm, posinf=0.0)),
        }

    def step(program, lr, state, t):
        key, k_explore, k_action, k_env, k_batch = jax.random.split(state["key"], 5)
        q = q_apply(state["online"], state["obs"][None])[0]
        epsilon = jnp.maximum(config.epsilon_floor, 1.0 - (1.0 - config.epsilon_floor) * t / epsilon_steps)
        explore = jax.random.uniform(k_explore) < epsilon
        action = jnp.where(explore, jax.random.randint(k_action, (), 0, env.num_actions), jnp.argmax(q)).astype(jnp.int32)
        obs, env_state, reward, terminated, done, final_obs = env.step(k_env, state["env_state"], action)

        slot = t % config.buffer_size
        transition = {
            "s_tm1": state["obs"],
            "a_tm1": action,
            "r_t": reward,
            "discount_t": config.gamma * (1.0 - terminated.astype(jnp.float32)),
            "s_t": final_obs,
        }
        buffer = jax.tree.map(lambda column, value: column.at[slot].set(value), state["buffer"], transition)
        episode_return = state["episode_return"] + reward
        returns = jnp.where(done, state["returns"].at[state["episodes"] % last].set(episode_return), state["returns"])
        state = {
            **state,
            "key": key,
            "obs": obs,
            "env_state": env_state,
            "buffer": buffer,
            "episode_return": jnp.where(done, 0.0, episode_return),
            "returns": returns,
            "episodes": state["episodes"] + done.astype(jnp.int32),
            "max_abs_q": jnp.maximum(state["max_abs_q"], jnp.max(jnp.abs(jnp.nan_to_num(q, nan=jnp.inf)))),
        }

        def learn(learner):
            size = jnp.minimum(t + 1, config.buffer_size)
            rows = jax.random.randint(k_batch, (config.batch_size,), 0, size)
            learner = update(program, lr, learner, jax.tree.map(lambda column: column[rows], buffer))
            copy = (t - config.warmup) % config.target_period == 0
            return {**learner, "target": jax.tree.map(lambda o, g: jnp.where(copy, o, g), learner["online"], learner["target"])}

        # t is the same for every run of a vmapped batch, so this stays a real branch; only the
        # learner's part of the state goes through it (not the replay buffer, which would be copied)
        learner = {k: state[k] for k in LEARNER}
        learner = jax.lax.cond(t >= config.warmup, learn, lambda learner: learner, learner)
        return {**state, **learner}

    def score(program, lr, state):
        finished = jnp.minimum(state["episodes"], last)
        mean_return = jnp.where(finished > 0, jnp.sum(jnp.where(jnp.arange(last) < finished, state["returns"], 0.0)) / jnp.maximum(finished, 1), jnp.nan)
        return {
            "mean_return": mean_return,
            "episodes": state["episodes"].astype(jnp.float32),
            "finite": state["finite"].astype(jnp.float32),
            "max_abs_q": state["max_abs_q"],
            "max_grad_norm": state["max_grad_norm"],
        }

    return harness.Task(env.spec.name, init, step, score, config.steps)


def hand_written(loss: Callable[[QApply], Callable[[Any, Any, dict], jax.Array]]) -> Callable[[QApply], LossFn]:
    """A `make_loss` for `dqn_task` from a hand-written loss(q_apply) -> f(online, target, batch)
    (rl_loss_fn.dqn_loss and the like): the program argument is ignored."""

    def make_loss(q_apply):
        fixed = loss(q_apply)
        return lambda program, online, target, batch: fixed(online, target, batch)

    return make_loss


def rlax_convention(loss: Callable[..., jax.Array]) -> Callable[[QApply], LossFn]:
    """A `make_loss` for `dqn_task` from a loss in the rlax calling convention, as
    `space.export(program, "jax")` writes one: loss(q_tm1, a_tm1, r_t, discount_t, q_t, *, extras),
    the extras (q_t_selector, q_tm1_target, s_tm1, s_t, q_fn, q_targ_fn) passed only where the
    function names them. Online-network values are computed inside, so gradients reach them."""
    import inspect

    wanted = {name for name, p in inspect.signature(loss).parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}

    def make_loss(q_apply):
        def program_loss(program, online, target, batch):
            extras = {
                "q_t_selector": lambda: q_apply(online, batch["s_t"]),
                "q_tm1_target": lambda: q_apply(target, batch["s_tm1"]),
                "s_tm1": lambda: batch["s_tm1"],
                "s_t": lambda: batch["s_t"],
                "q_fn": lambda: lambda states: q_apply(online, states),
                "q_targ_fn": lambda: lambda states: q_apply(target, states),
            }
            return loss(
                q_apply(online, batch["s_tm1"]), batch["a_tm1"], batch["r_t"], batch["discount_t"], q_apply(target, batch["s_t"]),
                **{name: extras[name]() for name in wanted},
            )

        return program_loss

    return make_loss
