"""The `trained` evaluator of nas-cells: every cell trained for real, by one compiled function.

The network is NAS-Bench-101's layout scaled down to scikit-learn's digits (1,797 8x8 images, ten
classes, shipped inside the scikit-learn wheel: nothing is downloaded): a 3x3 conv-BN-ReLU stem of
`channels` channels, `stacks` stacks of `cells_per_stack` cells, a 2x2 max-pool and twice the
channels before every stack but the first, global average pooling and a dense layer to 10 logits.

One compile per worker for every cell (design.md 6): the cell is DATA, a 7x7 adjacency matrix and
a 7x3 op one-hot, and the network is a fixed maximal cell that uses them as masks (reference B.7):

    vertex v:  x_v = adj[0,v] * proj_v(x_in) + sum_u adj[u,v] * h_u
               h_v = sum_k ops[v,k] * op_k(x_v)         op_k: conv3x3-bn-relu, conv1x1-bn-relu, maxpool3x3
    output:    adj[0,6] * proj_out(x_in) + sum_v adj[v,6] * h_v

Every op runs at every vertex (about 3x the FLOPs of the one cell) but no candidate is compiled.
Departures from NAS-Bench-101, all for static shapes or for the small data: every vertex has the
cell's full channel count (the benchmark splits the output channels over the vertices that feed the
output and truncates), and the output SUMS its inputs where the benchmark concatenates them; batch
norm momentum 0.9 (the benchmark's 0.997 suits 108 epochs, not a few hundred steps); SGD with
momentum 0.9, cosine decay and weight decay 1e-4 (the benchmark: RMSProp on TPUs). Dead vertices
have all-zero masks, so they add nothing and get no gradient. The parameter count reported is that
of the cell itself: the projections and ops its vertices use, not the masked ones.

Data split (fixed, seed 0): 1,197 training images, 300 validation (fitness), 300 test.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from evolve.errors import OptionError
from evolve.harness import Harness, Task
from evolve.program import Program
from evolve.space import Evaluation, Evaluator

from evolve.search_spaces import nas_cells
from evolve.search_spaces.nas_hash import AVAILABLE_OPS, MAX_VERTICES

OUTPUT_SLOT = MAX_VERTICES - 1
OP_MODULES = ("conv3x3", "conv1x1", None)  # module name suffix of each op (maxpool has no parameters)
BN_MOMENTUM = 0.9
WEIGHT_DECAY = 1e-4
SPLIT = (1197, 300, 300)  # train, validation, test


@dataclasses.dataclass(frozen=True)
class NetworkShape:
    """The network around the cells (see the module docstring)."""

    channels: int = 16
    stacks: int = 3
    cells_per_stack: int = 1
    classes: int = 10


def cell_arrays(program: Program) -> dict[str, np.ndarray]:
    """The cell as masks of the maximal cell: vertex i of the cell in slot i, its output in slot 6,
    the empty slots with no edges and no op."""
    matrix, ops = nas_cells.spec(program)
    slots = [*range(len(ops) - 1), OUTPUT_SLOT]
    adjacency = np.zeros((MAX_VERTICES, MAX_VERTICES), np.float32)
    for u, row in enumerate(matrix):
        for v, bit in enumerate(row):
            adjacency[slots[u], slots[v]] = bit
    onehot = np.zeros((MAX_VERTICES, len(AVAILABLE_OPS)), np.float32)
    for v in range(1, len(ops) - 1):
        onehot[v, AVAILABLE_OPS.index(ops[v])] = 1.0
    return {"adjacency": adjacency, "ops": onehot}


# ---------------------------------------------------------------------------- the network


class ConvBnRelu(nn.Module):
    """NAS-Bench-101's conv-BN-ReLU: convolution without bias, batch norm, ReLU."""

    features: int
    kernel: int

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(self.features, (self.kernel, self.kernel), padding="SAME", use_bias=False,
                    kernel_init=nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal"))(x)
        x = nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=1e-5)(x)
        return nn.relu(x)


def max_pool3x3(x):
    return nn.max_pool(x, (3, 3), strides=(1, 1), padding="SAME")


class MaskedCell(nn.Module):
    """The maximal cell: every vertex slot runs every op; the masks choose (module docstring)."""

    channels: int

    @nn.compact
    def __call__(self, x, adjacency, ops, train: bool):
        c = self.channels
        h = [None] * MAX_VERTICES
        for v in range(1, OUTPUT_SLOT):
            x_v = adjacency[0, v] * ConvBnRelu(c, 1, name=f"proj{v}")(x, train)
            for u in range(1, v):
                x_v = x_v + adjacency[u, v] * h[u]
            branches = (ConvBnRelu(c, 3, name=f"v{v}_conv3x3")(x_v, train), ConvBnRelu(c, 1, name=f"v{v}_conv1x1")(x_v, train),
                        max_pool3x3(x_v))
            h[v] = sum(ops[v, k] * branch for k, branch in enumerate(branches))
        out = adjacency[0, OUTPUT_SLOT] * ConvBnRelu(c, 1, name="proj_out")(x, train)
        for v in range(1, OUTPUT_SLOT):
            out = out + adjacency[v, OUTPUT_SLOT] * h[v]
        return out


class MaskedNetwork(nn.Module):
    shape: NetworkShape

    @nn.compact
    def __call__(self, x, adjacency, ops, train: bool):
        channels = self.shape.channels
        x = ConvBnRelu(channels, 3, name="stem")(x, train)
        for s in range(self.shape.stacks):
            if s:
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
                channels *= 2
            for m in range(self.shape.cells_per_stack):
                x = MaskedCell(channels, name=f"stack{s}_cell{m}")(x, adjacency, ops, train)
        return nn.Dense(self.shape.classes, name="head")(jnp.mean(x, axis=(1, 2)))


def cell_parameter_count(param_shapes: Any, arrays: dict[str, np.ndarray]) -> int:
    """Parameters the cell itself uses: the masked network's, less the projections of vertices that
    do not read the input and the ops a vertex does not run."""
    adjacency, ops = arrays["adjacency"], arrays["ops"]
    used = {"proj_out": bool(adjacency[0, OUTPUT_SLOT])}
    for v in range(1, OUTPUT_SLOT):
        used[f"proj{v}"] = bool(adjacency[0, v] and ops[v].any())
        for k, suffix in enumerate(OP_MODULES):
            if suffix:
                used[f"v{v}_{suffix}"] = bool(ops[v, k])
    total = 0
    for path, leaf in jax.tree_util.tree_flatten_with_path(param_shapes)[0]:
        names = [getattr(key, "key", None) for key in path]
        if all(used.get(name, True) for name in names):
            total += int(np.prod(leaf.shape))
    return total


# ---------------------------------------------------------------------------- data and training


def digits() -> dict[str, np.ndarray]:
    """scikit-learn's digits, standardized, split train / validation / test (fixed, seed 0)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise OptionError("the trained evaluator of nas-cells trains on scikit-learn's digits: pip install scikit-learn") from None
    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0 - 0.5)[..., None] * 2.0  # [1797, 8, 8, 1], in [-1, 1]
    y = bunch.target.astype(np.int32)
    order = np.random.default_rng(0).permutation(len(y))
    a, b = SPLIT[0], SPLIT[0] + SPLIT[1]
    parts = {"train": order[:a], "validation": order[a:b], "test": order[b : b + SPLIT[2]]}
    return {f"{k}_{name}": v[idx] for name, idx in parts.items() for k, v in (("x", x), ("y", y))}


def training_task(network: nn.Module, data: dict[str, np.ndarray], steps: int, batch: int) -> Task:
    """Train `network` (called as network(x, adjacency, ops, train)) on the digits for `steps`
    minibatch steps, a new shuffle every epoch; score accuracy on validation and test (one forward
    pass over both: one copy of the network less to compile). The program is {"adjacency", "ops"};
    the grid point is {"lr"}."""
    x_train, y_train = jnp.asarray(data["x_train"]), jnp.asarray(data["y_train"])
    x_held = jnp.asarray(np.concatenate([data["x_validation"], data["x_test"]]))
    y_held = jnp.asarray(np.concatenate([data["y_validation"], data["y_test"]]))
    n_validation = len(data["y_validation"])
    n_train = x_train.shape[0]
    if not 1 <= batch <= n_train:
        raise OptionError(f"batch must be between 1 and {n_train}, got {batch}")
    per_epoch = n_train // batch
    momentum = optax.chain(optax.add_decayed_weights(WEIGHT_DECAY), optax.trace(decay=0.9))

    def variables(state):
        return {"params": state["params"], "batch_stats": state["batch_stats"]}

    def init(program, hyperparameters, key):
        init_key, data_key = jax.random.split(key)
        v = network.init(init_key, x_train[:1], program["adjacency"], program["ops"], train=False)
        return {"params": v["params"], "batch_stats": v["batch_stats"], "opt": momentum.init(v["params"]), "key": data_key}

    def step(program, hyperparameters, state, t):
        epoch, position = jnp.divmod(t, per_epoch)
        order = jax.random.permutation(jax.random.fold_in(state["key"], epoch), n_train)
        idx = jax.lax.dynamic_slice(order, (position * batch,), (batch,))
        xb, yb = x_train[idx], y_train[idx]

        def loss(params):
            logits, updated = network.apply({"params": params, "batch_stats": state["batch_stats"]}, xb,
                                            program["adjacency"], program["ops"], train=True, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean(), updated["batch_stats"]

        (_, batch_stats), grads = jax.value_and_grad(loss, has_aux=True)(state["params"])
        directions, opt = momentum.update(grads, state["opt"], state["params"])
        lr = hyperparameters["lr"] * 0.5 * (1.0 + jnp.cos(jnp.pi * t / steps))
        params = jax.tree.map(lambda p, d: p - lr * d, state["params"], directions)
        return {"params": params, "batch_stats": batch_stats, "opt": opt, "key": state["key"]}

    def score(program, hyperparameters, state):
        logits = network.apply(variables(state), x_held, program["adjacency"], program["ops"], train=False)
        correct = jnp.argmax(logits, -1) == y_held
        return {"validation_accuracy": jnp.mean(correct[:n_validation]), "test_accuracy": jnp.mean(correct[n_validation:])}

    return Task("digits", init, step, score, steps)


class TrainedEvaluator(Evaluator):
    """Trains each cell `seeds` times (vmapped) with the masked network; fitness is the mean
    validation accuracy. Compiled once, on the first cell."""

    def __init__(self, shape: NetworkShape, steps: int, batch: int, lr: float, seeds: int):
        data = digits()
        self.network = MaskedNetwork(shape)
        self.harness = Harness([training_task(self.network, data, steps, batch)], {"lr": np.array([lr], np.float32)}, list(range(seeds)))
        empty = {"adjacency": np.zeros((MAX_VERTICES, MAX_VERTICES), np.float32), "ops": np.zeros((MAX_VERTICES, len(AVAILABLE_OPS)), np.float32)}
        self.param_shapes = jax.eval_shape(
            lambda: self.network.init(jax.random.key(0), data["x_train"][:1], empty["adjacency"], empty["ops"], train=False)["params"])

    @property
    def compilations(self) -> int:
        """How many times the training was traced (and so compiled) in this process."""
        return self.harness.traces

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        results = []
        for program in programs:
            arrays = cell_arrays(program)
            start = time.perf_counter()
            [outcome] = self.harness.run(arrays)
            seconds = time.perf_counter() - start
            validation = outcome["validation_accuracy"][0]  # [seeds] at the one learning rate
            test = outcome["test_accuracy"][0]
            metrics = {
                "validation_accuracy": float(validation.mean()),
                "test_accuracy": float(test.mean()),
                "validation_accuracy_per_seed": [float(a) for a in validation],
                "trainable_parameters": cell_parameter_count(self.param_shapes, arrays),
                "training_seconds": seconds,
                "module_hash": nas_cells.module_hash(program),
            }
            results.append(Evaluation(metrics["validation_accuracy"], metrics))
        return results
