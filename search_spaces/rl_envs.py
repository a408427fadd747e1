"""The environments RL losses are scored on, with the return ranges that normalize them to [0, 1].

Every environment is a real gymnax one (`gymnax.make`, imported lazily: importing gymnax costs about
2 s and imports matplotlib). A score on one environment is, as in Co-Reyes et al. 2021
(brain_autorl `run_search.py`), the mean return of the last training episodes normalized by a fixed
range and clipped:

    normalized = clip((R - R_min) / (R_max - R_min), 0, 1)

Ranges, and why (reference: shared/reference/rl-losses-and-nas-cells.md A.3, A.5):
* CartPole-v1: [0, 500]. The original used CartPole-v0 with [0, 200] (200-step episodes); gymnax's
  v1 runs 500 steps, so the top of the range is its longest episode.
* Acrobot-v1: [-500, -50], the original's (500-step episodes of reward -1 until the goal).
* Pong-misc: [0, 1000], the returns an episode can have: gymnax's Pong against its built-in
  opponent (which follows the ball) pays 1 per step until the ball passes a paddle, and stops at
  1,000 steps (gymnax environments/misc/pong.py: `reward = 1.0 - done`, `max_steps_in_episode`
  1000). Random play survives about 87 steps (1,000 episodes measured here); the hand-written DQN
  about 300 after 20,000 steps (2 seeds: 287, 326; 86 CPU seconds). In no preset: a loss
  whose ops read or make states costs about 24 ms per interpreted update here against 1.0 ms
  hand-written (its 3,600-number observations: the interpreter's buffer gives every node a slot as
  wide as a state), about 8 CPU minutes per candidate in updates alone; one without state ops
  (DQN, the published losses) 2.2 ms (rl_loss_fn.LOSS_FORMS; benchmarks/rl_eval.py --update-cost).
  Choose it with the rl-losses `envs` option.
* Catch-bsuite: [-1, 1], the only two returns an episode can have (held out).
* Breakout-MinAtar: [0, 30], random play scores about 0.5, PPO about 28 (gymnax README) (held out).

Which environments a candidate trains on, for how long, is the space's configuration (rl_losses
PRESETS): CartPole-v1 the hurdle, then Acrobot-v1; the held-out suite, never used
for fitness, another gymnax family (bsuite, MinAtar).

MountainCar-v0 ([-200, -110], the original's) is in no preset: its reward is sparse, so a DQN learns
it only when exploration happens to reach the flag. Measured here with the hand-written DQN: two
seeds never reached it in 60,000 steps, one of four in 200,000; CleanRL's DQN scores -194.95 ±
8.48 after 500,000 (shared/reference A.5). A search may still name it (rl-losses `envs`) with a
budget of its own; where DQN does not learn it, the evaluator says so when it is built. Not FourRooms-misc either (the gymnax cousin of the original's
MiniGrid-FourRooms): DQN's 20,000 steps ended below random play (0.2 against 0.44 goals per episode).

This module imports no JAX (the grammar may read the table below); gymnax and JAX are imported when
an environment is made.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from evolve.errors import OptionError


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """One environment of a suite.

    name: the gymnax id; return_range: (R_min, R_max) of the normalization above;
    epsilon_steps: environment steps over which exploration decays from 1 to its floor (the
    original's schedule: 1e3 for CartPole and Acrobot, 1e4 for MountainCar, which the games
    here take too), scaled by the configuration's budget where it would not fit."""

    name: str
    return_range: tuple[float, float]
    epsilon_steps: int

    def normalize(self, episode_return: float) -> float:
        low, high = self.return_range
        return min(max((episode_return - low) / (high - low), 0.0), 1.0)


ENVIRONMENTS = {
    spec.name: spec
    for spec in (
        EnvSpec("CartPole-v1", (0.0, 500.0), 1_000),
        EnvSpec("Acrobot-v1", (-500.0, -50.0), 1_000),
        EnvSpec("MountainCar-v0", (-200.0, -110.0), 10_000),
        EnvSpec("Pong-misc", (0.0, 1000.0), 10_000),
        EnvSpec("Catch-bsuite", (-1.0, 1.0), 1_000),
        EnvSpec("Breakout-MinAtar", (0.0, 30.0), 10_000),
    )
}


@dataclasses.dataclass(frozen=True)
class Environment:
    """A gymnax environment behind flat float32 observations.

    reset(key) -> (obs [obs_dim], state); step(key, state, action) -> (obs, state, reward,
    terminated, done, final_obs): `obs` is the next episode's first observation when `done`
    (gymnax resets by itself), `final_obs` the observation the action led to, which is what a
    transition stores; only `terminated` (not a time limit) ends bootstrapping."""

    spec: EnvSpec
    env: Any
    params: Any
    obs_dim: int
    num_actions: int

    def reset(self, key):
        obs, state = self.env.reset(key, self.params)
        return _flat(obs), state

    def step(self, key, state, action):
        import jax.numpy as jnp

        obs, state, reward, terminated, truncated, info = self.env.step(key, state, action, self.params)
        done = jnp.logical_or(terminated, truncated)
        return _flat(obs), state, reward.astype(jnp.float32), terminated, done, _flat(info["final_observation"])


def make(name: str) -> Environment:
    """The environment `name` (a key of ENVIRONMENTS), from gymnax."""
    if name not in ENVIRONMENTS:
        raise OptionError(f"no return range for environment {name!r}; known: {', '.join(ENVIRONMENTS)}")
    try:
        import gymnax
    except ImportError as error:
        raise OptionError(f"training on {name} needs gymnax ({error}); install it with pip install -e '.[rl]'") from None
    import jax

    env, params = gymnax.make(name)
    obs, _ = env.reset(jax.random.key(0), params)
    return Environment(ENVIRONMENTS[name], env, params, int(_flat(obs).shape[0]), int(env.num_actions))


def _flat(obs):
    import jax.numpy as jnp

    return jnp.reshape(obs, (-1,)).astype(jnp.float32)
