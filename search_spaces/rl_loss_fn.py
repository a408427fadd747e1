"""An RL loss program as a JAX loss function, compiled once for every program (issue 10).

The interface between the grammar (rl_losses, rl_ops) and the DQN that trains with a program
(rl_dqn, rl_evaluator):

    make_loss(vocab, q_apply) -> loss(program_arrays, online_params, target_params, batch) -> float32 scalar

* q_apply(params, observations [B, obs_dim]) -> Q-values [B, num_actions]: the agent's network.
* program_arrays: ONE lowered program, `lower(space_or_vocab, program)`: a row of
  evolve.interpreter.Interpreter(vocab).lower([program.pruned()]) (for a batch, lower the pruned
  programs together and take row k with `jax.tree.map(lambda a: a[k], lowered)`). Lower pruned
  programs: a node nothing reads would still run, and its zero cotangent times an infinite partial
  derivative (a division by ~0) would put NaN into the gradient. It is a traced argument: one
  compile of the jitted loss, or of a training loop calling it, serves every program.
* batch: dict of s_tm1 [B, obs_dim] float32, a_tm1 [B] int32, r_t [B] float32, discount_t [B]
  float32 (the environment's discount times gamma, 0 at a terminal step), s_t [B, obs_dim] float32.
* The program's output is the loss of each transition; `loss` is its mean over the batch, as the
  original's learner (custom_dqn.py) reduces it. `jax.grad(loss, argnums=1)` is the gradient with
  respect to the online parameters: it flows through every Q-value of the online network the
  program reads (nothing is stop-gradient-ed; the target network is the other argument).
* The number of actions is read from q_apply's output shape; nothing else is fixed at build time.

The reference losses below are the same losses written directly in jax.numpy, for tests and
comparisons: `dqn_loss(q_apply)` etc. return `loss(online_params, target_params, batch)`.

`Probe` computes the behaviour fingerprints of the space (as the original's `GraphHasher`): each
program's loss values on one fixed random batch of 10 transitions with 4-dimensional states, 4
actions and two fixed random MLPs [4, 4] as online and target networks, inputs uniform in
[-100, 100], to 5 significant digits, hashed. Each program runs alone through one jitted function,
so a fingerprint never depends on the batch it was computed in.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from evolve.interpreter import Interpreter, LoweredPrograms, enable_compilation_cache
from evolve.ops import Vocabulary
from evolve.program import Program

from evolve.search_spaces.rl_ops import INPUT_NAMES, ONLINE, TARGET

QApply = Callable[[Any, jax.Array], jax.Array]
Batch = dict


@dataclasses.dataclass(frozen=True)
class QNetworks:
    """The interpreter's context for `q_values`: applies the online or the target network."""

    q_apply: QApply
    online: Any
    target: Any

    def __call__(self, param: jax.Array, state: jax.Array) -> jax.Array:
        which = jnp.reshape(param, (-1,))[0]  # every sample names the same network
        params = jax.tree.map(lambda o, t: jnp.where(which == ONLINE, o, t), self.online, self.target)
        return self.q_apply(params, state)


def _vocab(space_or_vocab) -> Vocabulary:
    return space_or_vocab if isinstance(space_or_vocab, Vocabulary) else space_or_vocab.vocabulary


def lower(space_or_vocab, program: Program) -> LoweredPrograms:
    """One program, pruned, as the arrays `loss` takes (numpy, no leading batch axis)."""
    batch = Interpreter(_vocab(space_or_vocab)).lower([program.pruned()])
    return jax.tree.map(lambda a: a[0], batch)


def program_inputs(batch: Batch) -> list:
    """The program's inputs from a batch, in the vocabulary's order (rl_ops.INPUT_NAMES)."""
    values = {
        "q_param": np.int32(ONLINE),
        "action": jnp.asarray(batch["a_tm1"], jnp.int32),
        "s_tm1": batch["s_tm1"],
        "q_targ_param": np.int32(TARGET),
        "s_t": batch["s_t"],
        "reward": batch["r_t"],
        "discount": batch["discount_t"],
        "constant": np.float32(0.0),
    }
    return [values[name] for name in INPUT_NAMES]


def make_per_sample_loss(vocab: Vocabulary, q_apply: QApply):
    """per_sample(program_arrays, online_params, target_params, batch) -> loss of each transition [B]."""
    interpreter = Interpreter(vocab)

    def per_sample(program, online, target, batch):
        actions = jax.eval_shape(q_apply, online, batch["s_tm1"]).shape[-1]
        out = interpreter.run(program, program_inputs(batch), dims={"actions": actions}, context=QNetworks(q_apply, online, target))
        return out[0]

    return per_sample


def make_loss(vocab: Vocabulary, q_apply: QApply):
    """loss(program_arrays, online_params, target_params, batch) -> the mean per-sample loss (float32)."""
    per_sample = make_per_sample_loss(vocab, q_apply)

    def loss(program, online, target, batch):
        return jnp.mean(per_sample(program, online, target, batch))

    return loss


# ---------------------------------------------------------------------------- reference losses
def _q_sa(q_apply, online, batch):
    q_tm1 = q_apply(online, batch["s_tm1"])
    return jnp.take_along_axis(q_tm1, batch["a_tm1"][:, None].astype(jnp.int32), axis=1)[:, 0]


def _max_next(q_apply, target, batch):
    return jnp.max(q_apply(target, batch["s_t"]), axis=1)


def dqn_loss(q_apply: QApply):
    """mean 0.5·(Q(s,a) - (r + γ·max Q_targ(s',·)))²."""

    def loss(online, target, batch):
        y = batch["r_t"] + batch["discount_t"] * _max_next(q_apply, target, batch)
        return jnp.mean(0.5 * (_q_sa(q_apply, online, batch) - y) ** 2)

    return loss


def double_dqn_loss(q_apply: QApply):
    """mean 0.5·(Q(s,a) - (r + γ·Q_targ(s', argmax Q(s',·))))²."""

    def loss(online, target, batch):
        best = jnp.argmax(q_apply(online, batch["s_t"]), axis=1)
        value = jnp.take_along_axis(q_apply(target, batch["s_t"]), best[:, None], axis=1)[:, 0]
        y = batch["r_t"] + batch["discount_t"] * value
        return jnp.mean(0.5 * (_q_sa(q_apply, online, batch) - y) ** 2)

    return loss


def dqn_reg_loss(q_apply: QApply):
    """mean 0.5·δ² + 0.1·Q(s,a) (the code's DQNReg; the paper writes δ²)."""

    def loss(online, target, batch):
        q_sa = _q_sa(q_apply, online, batch)
        y = batch["r_t"] + batch["discount_t"] * _max_next(q_apply, target, batch)
        return jnp.mean(0.5 * (q_sa - y) ** 2 + 0.1 * q_sa)

    return loss


def dqn_clipped_loss(q_apply: QApply):
    """mean max(Q(s,a), δ² + Y) + max(Q(s,a) - Y, γ·(max Q_targ(s',·))²) (the paper's DQNClipped)."""

    def loss(online, target, batch):
        q_sa = _q_sa(q_apply, online, batch)
        max_next = _max_next(q_apply, target, batch)
        y = batch["r_t"] + batch["discount_t"] * max_next
        delta = q_sa - y
        return jnp.mean(jnp.maximum(q_sa, delta**2 + y) + jnp.maximum(delta, batch["discount_t"] * max_next**2))

    return loss


REFERENCE_LOSSES = {"dqn": dqn_loss, "double_dqn": double_dqn_loss, "dqn_reg": dqn_reg_loss, "dqn_clipped": dqn_clipped_loss}


# ---------------------------------------------------------------------------- fingerprints
PROBE_BATCH, PROBE_OBS, PROBE_ACTIONS, PROBE_RANGE = 10, 4, 4, 100.0


def mlp_apply(params, observations):
    """A ReLU MLP over a list of (w, b) layers."""
    x = observations
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def random_mlp(rng: np.random.Generator, sizes: Sequence[int]) -> list:
    return [
        (jnp.asarray(rng.normal(size=(n_in, n_out)) / np.sqrt(n_in), jnp.float32), jnp.asarray(rng.normal(size=n_out) * 0.1, jnp.float32))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]


def probe_batch(rng: np.random.Generator) -> Batch:
    """A random batch as the original's `initialize_random_input` draws one."""
    uniform = lambda *shape: jnp.asarray(rng.uniform(-PROBE_RANGE, PROBE_RANGE, shape), jnp.float32)  # noqa: E731
    return {
        "s_tm1": uniform(PROBE_BATCH, PROBE_OBS),
        "a_tm1": jnp.asarray(rng.integers(0, PROBE_ACTIONS, PROBE_BATCH), jnp.int32),
        "r_t": uniform(PROBE_BATCH),
        "discount_t": uniform(PROBE_BATCH),
        "s_t": uniform(PROBE_BATCH, PROBE_OBS),
    }


class Probe:
    """Behaviour fingerprints (module docstring). Built on the grammar's first `fingerprints` call."""

    def __init__(self, vocab: Vocabulary):
        enable_compilation_cache()
        rng = np.random.default_rng(0)
        sizes = (PROBE_OBS, PROBE_OBS, PROBE_ACTIONS)  # the original's sonnet MLP([4, 4])
        self._online, self._target = random_mlp(rng, sizes), random_mlp(rng, sizes)
        self._batch = probe_batch(rng)
        self._interpreter = Interpreter(vocab)
        self._run = jax.jit(make_per_sample_loss(vocab, mlp_apply))

    def losses(self, program: Program) -> np.ndarray:
        """The program's loss on each probe transition."""
        arrays = jax.tree.map(lambda a: a[0], self._interpreter.lower([program.pruned()]))
        return np.asarray(self._run(arrays, self._online, self._target, self._batch), np.float64)

    def fingerprints(self, programs: Sequence[Program]) -> list[str]:
        out = []
        for program in programs:
            text = ",".join(f"{v:.5g}" for v in self.losses(program).tolist())
            out.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
        return out
