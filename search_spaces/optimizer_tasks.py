"""The training tasks optimizer programs are scored on: a training suite the search sees, and a
held-out suite it never sees, which says whether a discovered optimizer generalizes.

Every task is small and real: a model, a data set made once from a fixed numpy seed, a full-batch
loss, and an initialisation that depends on the run's seed. Parameters are one flat float32 vector,
the shape the interpreter works on.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from evolve.errors import OptionError


@dataclasses.dataclass(frozen=True)
class Task:
    """init(key) -> flat parameters; loss(flat parameters) -> scalar (full batch, >= 0)."""

    name: str
    init: Callable[[jax.Array], jax.Array]
    loss: Callable[[jax.Array], jax.Array]


def _flat(name: str, init_tree: Callable, loss_tree: Callable) -> Task:
    """A Task from a model written on parameter pytrees."""
    _, unravel = ravel_pytree(init_tree(jax.random.key(0)))
    return Task(name, lambda key: ravel_pytree(init_tree(key))[0], lambda flat: loss_tree(unravel(flat)))


def _dense(key, n_in: int, n_out: int) -> dict:
    return {"w": jax.random.normal(key, (n_in, n_out)) / np.sqrt(n_in), "b": jnp.zeros(n_out)}


def _cross_entropy(logits, labels) -> jax.Array:
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1))


def _teacher_labels(rng: np.random.Generator, x: np.ndarray, classes: int) -> np.ndarray:
    """Labels from a random one-hidden-layer network: a nonlinear, learnable boundary."""
    w1 = rng.normal(size=(x.shape[1], 16))
    w2 = rng.normal(size=(16, classes))
    return np.argmax(np.tanh(x @ w1) @ w2, axis=1)


def logistic_regression(n: int = 256, d: int = 16, seed: int = 1) -> Task:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=d)  # unequal feature scales
    y = (x @ rng.normal(size=d) + 0.5 * rng.normal(size=n) > 0).astype(np.float32)
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y)

    def loss(params):
        z = x @ params["w"] + params["b"]
        return jnp.mean(jnp.logaddexp(0.0, z) - y * z)

    return _flat("logistic-regression", lambda key: {"w": 0.1 * jax.random.normal(key, (d,)), "b": jnp.zeros(())}, loss)


def mlp(name: str, sizes: tuple[int, ...], n: int = 256, seed: int = 2, activation=jnp.tanh) -> Task:
    """Classification of teacher-network labels by an MLP with layer widths `sizes`."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, sizes[0]))
    labels = jnp.asarray(_teacher_labels(rng, x, sizes[-1]))
    x = jnp.asarray(x, jnp.float32)

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [_dense(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]

    def loss(params):
        h = x
        for layer in params[:-1]:
            h = activation(h @ layer["w"] + layer["b"])
        return _cross_entropy(h @ params[-1]["w"] + params[-1]["b"], labels)

    return _flat(name, init, loss)


def conv_net(n: int = 64, size: int = 8, channels: int = 4, classes: int = 4, seed: int = 3) -> Task:
    """A small convolutional net on synthetic digit-like images: each class is a random smooth
    prototype, each image a prototype rolled by up to one pixel plus noise.

    The 3x3 convolution (SAME padding) is a matmul over image patches cut once from the fixed
    data: the same function as lax.conv, and several times faster on a CPU under vmap."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(classes, size // 2, size // 2))
    prototypes = np.kron(coarse, np.ones((2, 2)))
    labels = rng.integers(classes, size=n)
    shifts = rng.integers(-1, 2, size=(n, 2))
    images = np.stack([np.roll(prototypes[c], tuple(s), axis=(0, 1)) for c, s in zip(labels, shifts)])
    images = np.pad(images + 0.8 * rng.normal(size=images.shape), ((0, 0), (1, 1), (1, 1)))
    patches = np.stack([images[:, i : i + size, j : j + size] for i in range(3) for j in range(3)], axis=-1)
    patches = jnp.asarray(patches, jnp.float32)  # [n, size, size, 9]
    labels = jnp.asarray(labels)
    pooled = channels * (size // 2) ** 2

    def init(key):
        k1, k2 = jax.random.split(key)
        return {"conv": jax.random.normal(k1, (9, channels)) / 3.0, "out": _dense(k2, pooled, classes)}

    def loss(params):
        h = jax.nn.relu(patches @ params["conv"])  # [n, size, size, channels]
        h = h.reshape(n, size // 2, 2, size // 2, 2, channels).mean(axis=(2, 4)).reshape(n, pooled)
        return _cross_entropy(h @ params["out"]["w"] + params["out"]["b"], labels)

    return _flat("conv-net", init, loss)


def quadratic(name: str, dim: int, condition: float, seed: int) -> Task:
    """0.5 (x - x*)^T A (x - x*) with A's eigenvalues log-spaced in [1/condition, 1], in a random basis."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    a = jnp.asarray(basis @ np.diag(np.logspace(-np.log10(condition), 0, dim)) @ basis.T, jnp.float32)
    target = jnp.asarray(rng.normal(size=dim), jnp.float32)

    def loss(x):
        d = x - target
        return 0.5 * d @ a @ d

    return Task(name, lambda key: jax.random.normal(key, (dim,)), loss)


def rosenbrock(name: str, dim: int) -> Task:
    """The chained Rosenbrock function, started near (-1.2, 1, -1.2, 1, ...)."""
    start = jnp.asarray(np.resize([-1.2, 1.0], dim), jnp.float32)

    def loss(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    return Task(name, lambda key: start + 0.1 * jax.random.normal(key, (dim,)), loss)


def linear_regression(n: int = 128, d: int = 24, seed: int = 5) -> Task:
    """Least squares with correlated, noisy features."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) @ (np.eye(d) + 0.5 * rng.normal(size=(d, d)) / np.sqrt(d))
    y = jnp.asarray(x @ rng.normal(size=d) + 0.3 * rng.normal(size=n), jnp.float32)
    x = jnp.asarray(x, jnp.float32)
    return Task("linear-regression", lambda key: 0.1 * jax.random.normal(key, (d,)), lambda w: 0.5 * jnp.mean((x @ w - y) ** 2))


def training_suite() -> tuple[Task, ...]:
    return (
        logistic_regression(),
        mlp("mlp", (8, 32, 4)),
        conv_net(),
        quadratic("quadratic", dim=16, condition=100.0, seed=4),
        rosenbrock("rosenbrock", dim=2),
    )


def heldout_suite() -> tuple[Task, ...]:
    return (
        mlp("mlp-deep-relu", (10, 24, 24, 3), n=128, seed=12, activation=jax.nn.relu),
        linear_regression(),
        quadratic("quadratic-hard", dim=32, condition=1000.0, seed=14),
        rosenbrock("rosenbrock-4d", dim=4),
    )


SUITES = {"train": training_suite, "heldout": heldout_suite}


def suite(name: str) -> tuple[Task, ...]:
    if name not in SUITES:
        raise OptionError(f"unknown task suite {name!r}; known: {', '.join(SUITES)}")
    return SUITES[name]()
