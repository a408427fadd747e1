"""The vocabulary of RL loss programs: the op table of Co-Reyes et al. 2021 (brain_autorl
`evolving_rl/ops.py`, config `pre_graph_7`) with its type rules, as evolve typed values.

A program computes, for a batch of transitions, one loss value per transition. Its element shape is
[batch]; the types add trailing axes:

    float     [B]             per-sample scalars: reward, discount, Q(s,a), losses
    list      [B, actions]    a value per action (Q-values)            (original LIST_ACTION_FLOAT)
    prob      [B, actions]    a distribution over actions (softmax)    (PROB)
    state     [B, obs]        observations                              (STATE)
    action    [B] int32       discrete actions                          (ACTION)
    param     [B] int32       which network: 0 online, 1 target         (PARAM)
    constant  [B]             the source constant ops read              (FLOATCONSTANT)

Inputs, in the original's order: q_param, action, s_tm1, q_targ_param, s_t, reward, discount,
constant. A `param` value is never data: only `q_values` reads it, and its fn asks the interpreter's
context (a callable `context(param, state) -> Q-values`, see rl_loss_fn.QNetworks) to apply the
online or the target network, so gradients reach the online network through every Q it reads.

Ops (original name in brackets; "unordered" = the original's `input_order_matters = False`, whose
programs list the two inputs in index order):

    q_values(param, state) -> list                  [QValueList]
    select(list, action) -> float                   [SelectList]      Q(s, a)
    argmax(list) -> action                          [ArgMaxList]
    max_list / sum_list / mean_list / std_list(list) -> float   reduce over actions
    softmax(list) -> prob; entropy(prob) -> float (sum p log(p + 1e-8), the original's sign: minus entropy)
    kl_div(prob, prob) -> float                     [KLDiv] Keras KLDivergence(y_true=first, y_pred=second)
    add, sub(float|list, float|list) -> list if a list is read, else float (sub ordered)
    mul(float, state|list) -> the other type, unordered          [MultiplyFloat]
    dot(x, x) for float, list (elementwise) and state (sum over obs -> float)   [DotProduct]
    max, min(x, x) for float and list; max_float(float, list) -> list        [Max, Min, MaxFloat]
    l2_distance(x, x) -> 0.5 (x - y)^2 (float), 0.5 ||x - y||^2 (state)     [L2Distance, "1/2 MSE"]
    l2_norm(x) -> x^2 (float, list), ||x||^2 (state -> float)               [L2Norm, "MSE"]
    div(x, x) = x / (y + 1e-10) for float, list, state, ordered               [Div]
    log(x) = log(|x| + 1e-12), exp(x) = min(exp(x), 1e10) for float, list, prob
    abs for float, list, state; mul_tenth(float) = 0.1 x                      [Abs, MultiplyTenth]
    mean_batch, std_batch(float|state): over the batch, broadcast back        [MeanBatch, StdBatch]
    const_0.5, const_0.2, const_0.1, const_0.01(constant) -> float            [ConstantP5 ...]

Departures from the original, each on purpose:
* No VECTOR type: in pre_graph_7 no input and no op produces one, so it can never occur.
* No AddGaussianNoise: the original calls a Keras `GaussianNoise(1)` layer without `training=True`,
  which is the identity, so the op was a no-op there; as an identity it would only spell existing
  losses longer (functional duplicates). No ConstantGaussian / ConstantUniform: they draw a fresh
  number on every call, which needs a random key the loss does not take and makes behaviour
  fingerprints depend on the draw; none of the published losses use them.
* No Loss node: the program's output is its last node (the original's Loss node, weight 1, only
  scaled it; `adjust_loss_weight` is off in run_search.py).
* std over a constant gives 0 with a zero gradient (JAX's sqrt would give a NaN gradient there);
  exp is min(exp(x), 1e10) computed as exp(min(x, log 1e10)), the same value with a finite gradient.

Validity, as the original's `build_program(check_path_diff=0)`: the output is a float and the
online network reaches it, checked as a space rule (`online_network_reaches_output`). The rule is
the original's path check made exact: a path through an `argmax` (an integer action) carries no
gradient, so it does not count.

This module imports no JAX: op functions import jax.numpy inside their bodies (they run only while a
program is traced), and rl_export copies their source into exported loss modules, so each is a plain
module-level function that calls only jnp and the helpers defined here.
"""

from __future__ import annotations

from evolve.ops import INPUT, Input, Op, ValueType, Vocabulary
from evolve.program import Program

FLOAT = ValueType("float")
LIST = ValueType("list", ("actions",))
PROB = ValueType("prob", ("actions",))
STATE = ValueType("state", ("obs",))
ACTION = ValueType("action", dtype="int32")
PARAM = ValueType("param", dtype="int32")
CONSTANT = ValueType("constant")

INPUT_NAMES = ("q_param", "action", "s_tm1", "q_targ_param", "s_t", "reward", "discount", "constant")
INPUT_TYPES = (PARAM, ACTION, STATE, PARAM, STATE, FLOAT, FLOAT, CONSTANT)
Q_PARAM, ACTION_IN, S_TM1, Q_TARG_PARAM, S_T, REWARD, DISCOUNT, CONSTANT_IN = range(len(INPUT_NAMES))
#: the value of each `param` input: which network `q_values` applies
ONLINE, TARGET = 0, 1
#: the op nodes of the DQN loss, which every program of the original's search starts from
DQN_OPS = 7
#: further random ops after them (the original's program_length of pre_graph_7)
EXTRA_OPS = 14


# ---------------------------------------------------------------------------- op functions
def q_values(context, param, state):
    """The Q-values of the network `param` names (0 online, 1 target) at `state`."""
    return context(param, state)


def select(q, action):
    import jax.numpy as jnp

    return jnp.take_along_axis(q, action[..., None].astype(jnp.int32), axis=-1)[..., 0]


def argmax(q):
    import jax.numpy as jnp

    return jnp.argmax(q, axis=-1).astype(jnp.int32)


def max_list(q):
    import jax.numpy as jnp

    return jnp.max(q, axis=-1)


def sum_list(q):
    import jax.numpy as jnp

    return jnp.sum(q, axis=-1)


def mean_list(q):
    import jax.numpy as jnp

    return jnp.mean(q, axis=-1)


def safe_std(x, axis):
    """Population standard deviation (tf.math.reduce_std) with keepdims; 0, and a zero gradient,
    where the values are all equal."""
    import jax.numpy as jnp

    var = jnp.mean(jnp.square(x - jnp.mean(x, axis=axis, keepdims=True)), axis=axis, keepdims=True)
    positive = var > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, var, 1.0)), 0.0)


def std_list(q):
    return safe_std(q, -1)[..., 0]


def softmax(q):
    import jax

    return jax.nn.softmax(q, axis=-1)


def entropy(p):
    """sum p log(p + 1e-8): the original's sign, so this is minus the entropy."""
    import jax.numpy as jnp

    return jnp.sum(p * jnp.log(p + 1e-8), axis=-1)


def kl_div(p, q):
    """Keras KLDivergence(y_true=p, y_pred=q), both clipped to [1e-7, 1]."""
    import jax.numpy as jnp

    p = jnp.clip(p, 1e-7, 1.0)
    q = jnp.clip(q, 1e-7, 1.0)
    return jnp.sum(p * jnp.log(p / q), axis=-1)


def lift(x, y):
    """A per-sample float against a per-action or per-feature value: the float gets a trailing axis
    (the original's broadcast_to_larger)."""
    if x.ndim < y.ndim:
        x = x[..., None]
    elif y.ndim < x.ndim:
        y = y[..., None]
    return x, y


def add(x, y):
    x, y = lift(x, y)
    return x + y


def sub(x, y):
    x, y = lift(x, y)
    return x - y


def mul(x, y):
    x, y = lift(x, y)
    return x * y


def dot(x, y):
    return x * y


def dot_state(x, y):
    import jax.numpy as jnp

    return jnp.sum(x * y, axis=-1)


def maximum(x, y):
    import jax.numpy as jnp

    x, y = lift(x, y)
    return jnp.maximum(x, y)


def minimum(x, y):
    import jax.numpy as jnp

    return jnp.minimum(x, y)


def l2_distance(x, y):
    return 0.5 * (x - y) ** 2


def l2_distance_state(x, y):
    import jax.numpy as jnp

    return 0.5 * jnp.sum((x - y) ** 2, axis=-1)


def l2_norm(x):
    return x**2


def l2_norm_state(x):
    import jax.numpy as jnp

    return jnp.sum(x**2, axis=-1)


def div(x, y):
    return x / (y + 1e-10)


def log(x):
    import jax.numpy as jnp

    return jnp.log(jnp.abs(x) + 1e-12)


def exp(x):
    """exp clipped at 1e10 (the original's tf.clip_by_value), with a finite gradient."""
    import jax.numpy as jnp

    return jnp.exp(jnp.minimum(x, 23.025850929940457))  # log(1e10)


def absolute(x):
    import jax.numpy as jnp

    return jnp.abs(x)


def mul_tenth(x):
    return 0.1 * x


def mean_batch(x):
    import jax.numpy as jnp

    return jnp.broadcast_to(jnp.mean(x, axis=0, keepdims=True), x.shape)


def std_batch(x):
    import jax.numpy as jnp

    return jnp.broadcast_to(safe_std(x, 0), x.shape)


def constant_op(value: float):
    """The op fn of a constant op: `value` in every sample."""

    def fn(c):
        import jax.numpy as jnp

        return jnp.full_like(c, value)

    fn.__name__ = fn.__qualname__ = f"constant_{value:g}".replace(".", "_")
    return fn


CONSTANTS = (0.5, 0.2, 0.1, 0.01)


# ---------------------------------------------------------------------------- the vocabulary
def _ops() -> tuple[Op, ...]:
    F, L, P, S, A, M, C = FLOAT, LIST, PROB, STATE, ACTION, PARAM, CONSTANT
    ops = [
        Op("q_values", (M, S), L, q_values, commutative=False, uses_context=True),
        Op("select", (L, A), F, select, commutative=False),
        Op("argmax", (L,), A, argmax),
        Op("max_list", (L,), F, max_list),
        Op("sum_list", (L,), F, sum_list),
        Op("mean_list", (L,), F, mean_list),
        Op("std_list", (L,), F, std_list),
        Op("softmax", (L,), P, softmax),
        Op("entropy", (P,), F, entropy),
        Op("kl_div", (P, P), F, kl_div, commutative=False),
        Op("mul_tenth", (F,), F, mul_tenth),
    ]
    for name, fn, commutative in (("add", add, True), ("sub", sub, False)):
        ops += [Op(name, (F, F), F, fn, commutative), Op(name, (F, L), L, fn, commutative),
                Op(name, (L, F), L, fn, commutative), Op(name, (L, L), L, fn, commutative)]
    ops += [Op("mul", (F, S), S, mul, True), Op("mul", (S, F), S, mul, True),
            Op("mul", (F, L), L, mul, True), Op("mul", (L, F), L, mul, True)]
    ops += [Op("dot", (F, F), F, dot, True), Op("dot", (L, L), L, dot, True), Op("dot", (S, S), F, dot_state, True)]
    for name, fn in (("max", maximum), ("min", minimum)):
        ops += [Op(name, (F, F), F, fn, True), Op(name, (L, L), L, fn, True)]
    ops += [Op("max_float", (F, L), L, maximum, True), Op("max_float", (L, F), L, maximum, True)]
    ops += [Op("l2_distance", (F, F), F, l2_distance, True), Op("l2_distance", (S, S), F, l2_distance_state, True)]
    ops += [Op("l2_norm", (F,), F, l2_norm), Op("l2_norm", (L,), L, l2_norm), Op("l2_norm", (S,), F, l2_norm_state)]
    ops += [Op("div", (T, T), T, div, commutative=False) for T in (F, L, S)]
    ops += [Op("log", (T,), T, log) for T in (F, L, P)]
    ops += [Op("exp", (T,), T, exp) for T in (F, L, P)]
    ops += [Op("abs", (T,), T, absolute) for T in (F, L, S)]
    ops += [Op("mean_batch", (T,), T, mean_batch) for T in (F, S)]
    ops += [Op("std_batch", (T,), T, std_batch) for T in (F, S)]
    ops += [Op(f"const_{value:g}", (C,), F, constant_op(value)) for value in CONSTANTS]
    return tuple(ops)


def vocabulary(extra_ops: int = EXTRA_OPS) -> Vocabulary:
    """The RL-loss grammar; programs hold at most DQN_OPS + extra_ops op nodes after the inputs."""
    return Vocabulary(
        inputs=tuple(Input(name, type_) for name, type_ in zip(INPUT_NAMES, INPUT_TYPES)),
        output_types=(FLOAT,),
        ops=_ops(),
        max_nodes=len(INPUT_NAMES) + DQN_OPS + extra_ops,
        rules=(online_network_reaches_output,),
    )


def gradient_carriers(program: Program) -> list[bool]:
    """Which nodes depend differentiably on the online network: q_param itself, and every op node
    reading a carrier, except argmax (its integer action carries no gradient)."""
    carries = [False] * len(program.nodes)
    for i, node in enumerate(program.nodes):
        if node.op == INPUT:
            carries[i] = i == Q_PARAM
        elif node.op != "argmax":
            carries[i] = any(carries[j] for j in node.inputs)
    return carries


def online_network_reaches_output(program: Program) -> str | None:
    """The space's rule: the loss must depend differentiably on the online network."""
    if all(gradient_carriers(program)[o] for o in program.outputs):
        return None
    return "the output does not depend on the online network (q_param) through a differentiable path"
