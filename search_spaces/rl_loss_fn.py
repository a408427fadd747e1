"""An RL loss program as a JAX loss function, compiled once for every program (issue 10).

The interface between the grammar (rl_losses, rl_ops) and the DQN that trains with a program
(rl_dqn, rl_evaluator):

    make_loss(vocab, q_apply) -> loss(program_arrays, online_params, target_params, batch) -> float32 scalar

* q_apply(params, observations [B, obs_dim]) -> Q-values [B, num_actions]: the agent's network.
* program_arrays: ONE lowered program, `lower(space_or_vocab, program)` (for a batch,
  `LossArrays(vocab).lower(programs)` and row k with `jax.tree.map(lambda a: a[k], lowered)`). The
  programs are lowered pruned: a node nothing reads would still run, and its zero cotangent times an
  infinite partial derivative (a division by ~0) would put NaN into the gradient. It is a traced
  argument: one compile of the jitted loss, or of a training loop calling it, serves every program.
* The network runs outside the interpreter. A `param` is always an input (no op makes one), so a
  `q_values` node reading an input state asks for one of four Q-value lists: the online or the
  target network at s_tm1 or at s_t. `loss` computes the four before the program runs, and lowering
  turns each such node into an op that reads its list (`run_vocabulary`). Only a `q_values` node
  reading a state the program computed (abs(s_tm1), r·s_t, ...) applies the network inside the
  interpreter's `lax.switch`. The interpreter runs with `recompute_gradients=True`
  (evolve.interpreter): its backward pass recomputes each node's op from the values the node read,
  so no branch keeps residuals. A network inside still costs: the backward pass then carries the
  cotangent of both networks' parameters (~9,500 numbers) through every node. A program with no
  such node trains with `make_loss(..., q_of_computed_states=False)`, whose context holds no
  network at all (such a node would give NaN there); `LossArrays.applies_network_inside` tells
  which. Figures in benchmarks/rl_eval.py's results.
* States widen every node. The interpreter packs each node's value in a row as wide as its widest
  type, a batch of states [B, obs_dim] here: an update costs 1.8x the hand-written one on CartPole
  (4 numbers) but 8.8x on Breakout-MinAtar (400) and 24.3x on Pong-misc (3,600). A program none of
  whose ops reads or makes a state (DQN and the published losses among them: their states only
  reach the network, outside) trains with `make_loss(..., states=False)`, which hands the
  interpreter placeholder states of width 1, so its rows are as wide as a Q-value list: 1.3x the
  hand-written update on Breakout-MinAtar, 2.2x on Pong-misc (benchmarks/rl_eval.py
  --update-cost). `LossArrays.form` says which of the three losses a program needs (LOSS_FORMS).
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
from evolve.ops import Op, Vocabulary
from evolve.program import Node, Program

from evolve.search_spaces.rl_ops import INPUT_NAMES, LIST, ONLINE, Q_PARAM, Q_TARG_PARAM, S_T, S_TM1, STATE, TARGET

QApply = Callable[[Any, jax.Array], jax.Array]
Batch = dict


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QNetworks:
    """The interpreter's context for `q_values`: applies the online or the target network (a
    pytree: the interpreter differentiates with respect to its parameters)."""

    q_apply: QApply = dataclasses.field(metadata={"static": True})
    online: Any
    target: Any

    def __call__(self, param: jax.Array, state: jax.Array) -> jax.Array:
        which = jnp.reshape(param, (-1,))[0]  # every sample names the same network
        params = jax.tree.map(lambda o, t: jnp.where(which == ONLINE, o, t), self.online, self.target)
        return self.q_apply(params, state)


#: the (param input, state input) pairs whose Q-values `loss` computes before the program runs
PRECOMPUTED_Q = ((Q_PARAM, S_TM1), (Q_PARAM, S_T), (Q_TARG_PARAM, S_TM1), (Q_TARG_PARAM, S_T))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QValues:
    """The interpreter's context: the four precomputed Q-value lists (PRECOMPUTED_Q's order), and
    the networks for a `q_values` node reading a computed state (None: the loss has no network
    inside the interpreter, and such a node gives NaN)."""

    precomputed: tuple[jax.Array, ...]
    networks: QNetworks | None

    def __call__(self, param: jax.Array, state: jax.Array) -> jax.Array:
        if self.networks is None:
            return jnp.float32(jnp.nan)
        return self.networks(param, state)


def _precomputed_q(k: int) -> Op:
    """The op a `q_values` node of PRECOMPUTED_Q[k] is lowered to: it reads list k of the context."""
    param, state = PRECOMPUTED_Q[k]

    def fn(context: QValues) -> jax.Array:
        return context.precomputed[k]

    return Op(f"q_values({INPUT_NAMES[param]},{INPUT_NAMES[state]})", (), LIST, fn, uses_context=True)


PRECOMPUTED_Q_OPS = tuple(_precomputed_q(k) for k in range(len(PRECOMPUTED_Q)))


def run_vocabulary(vocab: Vocabulary) -> Vocabulary:
    """The grammar's ops (same branch codes) and one op per precomputed Q-value list: what programs
    are lowered to and run with; never drawn by mutation, never exported."""
    ops = vocab.ops + PRECOMPUTED_Q_OPS
    return Vocabulary(vocab.inputs, vocab.output_types, ops, vocab.max_nodes, const_types=vocab.const_types)


#: the losses a program may need, cheapest first: name -> make_loss options. "no states": no op
#: reads or makes a state; "states": some do; "network inside": one applies the network to a state
#: it computed (LossArrays.form)
LOSS_FORMS = {
    "no states": {"q_of_computed_states": False, "states": False},
    "states": {"q_of_computed_states": False, "states": True},
    "network inside": {"q_of_computed_states": True, "states": True},
}


class LossArrays:
    """Lowers programs of the grammar `vocab` to the arrays `make_loss` takes."""

    def __init__(self, vocab: Vocabulary):
        self.vocabulary = run_vocabulary(vocab)
        self.interpreter = Interpreter(self.vocabulary)
        # branch codes: the vocabulary's ops come first in the branch table
        self._network_code = self.vocabulary.ops.index(vocab.overloads("q_values")[0])
        self._state_codes = np.asarray([code for code, op in enumerate(self.vocabulary.ops)
                                        if op.output_type == STATE or STATE in op.input_types])

    def lower(self, programs: Sequence[Program]) -> LoweredPrograms:
        """The programs, pruned, their Q-values of input states read from the precomputed lists."""
        return self.interpreter.lower([_read_precomputed_q(program.pruned()) for program in programs])

    def applies_network_inside(self, arrays: LoweredPrograms) -> bool:
        """Whether a lowered program applies the network to a state it computed (a `q_values` node
        left in the arrays): it needs `make_loss(..., q_of_computed_states=True)`."""
        return bool(np.any(np.asarray(arrays.opcodes) == self._network_code))

    def form(self, arrays: LoweredPrograms) -> str:
        """The cheapest of LOSS_FORMS that trains a lowered program correctly."""
        if self.applies_network_inside(arrays):
            return "network inside"
        return "states" if np.isin(np.asarray(arrays.opcodes), self._state_codes).any() else "no states"


def _read_precomputed_q(program: Program) -> Program:
    names = {pair: op.name for pair, op in zip(PRECOMPUTED_Q, PRECOMPUTED_Q_OPS)}
    nodes = tuple(Node(names[node.inputs]) if node.op == "q_values" and node.inputs in names else node for node in program.nodes)
    return Program(nodes, program.outputs, program.space)


def _vocab(space_or_vocab) -> Vocabulary:
    return space_or_vocab if isinstance(space_or_vocab, Vocabulary) else space_or_vocab.vocabulary


def lower(space_or_vocab, program: Program) -> LoweredPrograms:
    """One program, pruned, as the arrays `loss` takes (numpy, no leading batch axis)."""
    batch = LossArrays(_vocab(space_or_vocab)).lower([program])
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


def make_per_sample_loss(vocab: Vocabulary, q_apply: QApply, q_of_computed_states: bool = True, states: bool = True):
    """per_sample(program_arrays, online_params, target_params, batch) -> loss of each transition [B].

    q_of_computed_states: whether the network may run inside the interpreter, for a `q_values` node
    reading a state the program computed; without it such a node gives NaN, and the backward pass
    is cheaper (module docstring).
    states: whether the program's ops may read or make states; without them the interpreter sees
    placeholder states of width 1 (a state op would compute on those), and every node's row is
    narrower (module docstring). Needs q_of_computed_states=False."""
    if q_of_computed_states and not states:
        raise ValueError("the network inside the interpreter reads states: states=False needs q_of_computed_states=False")
    interpreter = Interpreter(run_vocabulary(vocab), recompute_gradients=True)
    networks_of = (lambda online, target: QNetworks(q_apply, online, target)) if q_of_computed_states else (lambda online, target: None)

    def per_sample(program, online, target, batch):
        params = {Q_PARAM: online, Q_TARG_PARAM: target}
        precomputed = tuple(q_apply(params[param], batch[INPUT_NAMES[state]]) for param, state in PRECOMPUTED_Q)
        context = QValues(precomputed, networks_of(online, target))
        if not states:
            placeholder = jnp.zeros((batch["s_t"].shape[0], 1), jnp.float32)
            batch = {**batch, "s_tm1": placeholder, "s_t": placeholder}
        out = interpreter.run(program, program_inputs(batch), dims={"actions": precomputed[0].shape[-1]}, context=context)
        return out[0]

    return per_sample


def make_loss_of(vocab: Vocabulary, form: str):
    """The `make_loss` (q_apply -> loss) of one of LOSS_FORMS, as a compiled DQN task takes it."""
    options = LOSS_FORMS[form]
    return lambda q_apply: make_loss(vocab, q_apply, **options)


def make_loss(vocab: Vocabulary, q_apply: QApply, q_of_computed_states: bool = True, states: bool = True):
    """loss(program_arrays, online_params, target_params, batch) -> the mean per-sample loss (float32)."""
    per_sample = make_per_sample_loss(vocab, q_apply, q_of_computed_states, states)

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
        self._arrays = LossArrays(vocab)
        self._run = jax.jit(make_per_sample_loss(vocab, mlp_apply))

    def losses(self, program: Program) -> np.ndarray:
        """The program's loss on each probe transition."""
        arrays = jax.tree.map(lambda a: a[0], self._arrays.lower([program]))
        return np.asarray(self._run(arrays, self._online, self._target, self._batch), np.float64)

    def fingerprints(self, programs: Sequence[Program]) -> list[str]:
        out = []
        for program in programs:
            text = ",".join(f"{v:.5g}" for v in self.losses(program).tolist())
            out.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
        return out
