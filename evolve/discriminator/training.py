"""Online training: the choice of training pairs from the replay buffer, the optax step.

A training step embeds a sample of M programs once and trains on all the pairs among them (an M x M
matrix, so the shape never changes): pairs are labelled by true fitness, near-ties are skipped, and a
pair of parent and child weighs more. Half the sample comes from the most recent individuals (with
their parents), half from the whole buffer, so the discriminator follows the search as it moves but
does not forget. A failed evaluation is kept with the worst fitness, so "fails" is learned too.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from evolve.discriminator.encoding import SMALLEST_BATCH, GraphEncoder, pad_count
from evolve.discriminator.model import Discriminator
from evolve.discriminator.replay import WORST, ReplayBuffer
from evolve.discriminator.stopwatch import Stopwatch
from evolve.ops import INPUT
from evolve.program import Node, Program


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    head: str = "pair"  # "pair": binary cross-entropy on pairs; "value": regression on fitness rank
    learning_rate: float = 1e-3
    batch_programs: int = 64
    recent: int = 256
    tie_tolerance: float = 1e-6
    parent_child_weight: float = 2.0


class Trainer:
    """The model's parameters and optimizer state, and jitted training and scoring functions."""

    def __init__(self, model: Discriminator, encoder: GraphEncoder, options: TrainingOptions, seed: int):
        if options.head not in ("pair", "value"):
            raise ValueError(f"head must be 'pair' or 'value', got {options.head!r}")
        self.model = model
        self.encoder = encoder
        self.options = options
        self.optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(options.learning_rate))
        sample = encoder.batch([_smallest_program(encoder)])
        self.params = jax.jit(model.init)(jax.random.PRNGKey(seed), sample)
        self.opt_state = self.optimizer.init(self.params)
        self._step = jax.jit(self._train_step)
        self._score = jax.jit(self._score_pairs)

    # ------------------------------------------------------------------ training
    def step(self, buffer: ReplayBuffer, rng: np.random.Generator, watch: Stopwatch) -> float:
        """One optimizer step on a fresh sample; returns the loss. Encoding is timed on `watch`."""
        opts = self.options
        m = opts.batch_programs
        idx = buffer.sample(rng, m, opts.recent)
        fitness = np.full(m, WORST, np.float32)
        fitness[: len(idx)] = buffer.arrays().fitness[idx]
        valid = np.zeros(m, bool)
        valid[: len(idx)] = True
        with watch("encoding"):
            graph = self.encoder.batch([buffer.programs[k] for k in idx], min_graphs=m)
        if opts.head == "pair":
            weights = self._pair_weights(buffer, idx, fitness, valid)
            targets = np.zeros(m, np.float32)
        else:
            weights = np.zeros((m, m), np.float32)
            ranked = np.sort(buffer.arrays().fitness)
            targets = np.zeros(m, np.float32)
            targets[: len(idx)] = np.searchsorted(ranked, fitness[: len(idx)], side="right") / len(ranked)
        self.params, self.opt_state, loss = self._step(
            self.params, self.opt_state, graph, jnp.asarray(fitness), weights, targets, valid
        )
        return float(loss)

    def _pair_weights(self, buffer: ReplayBuffer, idx: np.ndarray, fitness: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """[m, m] weight of each pair (i < j): 0 for ties and padding, more for parent and child."""
        m = len(fitness)
        real = np.asarray(fitness, np.float64)
        apart = np.abs(real[:, None] - real[None, :]) > self.options.tie_tolerance
        weights = (np.triu(np.ones((m, m), bool), 1) & apart & valid[:, None] & valid[None, :]).astype(np.float32)
        ids = np.full(m, -2, np.int64)
        parents = np.full(m, -3, np.int64)
        columns = buffer.arrays()
        ids[: len(idx)] = columns.ids[idx]
        parents[: len(idx)] = columns.parents[idx]
        related = (parents[:, None] == ids[None, :]) | (ids[:, None] == parents[None, :])
        return weights * np.where(related, self.options.parent_child_weight, 1.0).astype(np.float32)

    def _train_step(self, params, opt_state, graph, fitness, weights, targets, valid):
        def loss_fn(p):
            e = self.model.apply(p, graph, method=Discriminator.embed)
            if self.options.head == "pair":
                logits = self.model.apply(p, e[:, None], e[None, :], method=Discriminator.pair_logits)
                labels = (fitness[:, None] > fitness[None, :]).astype(jnp.float32)
                losses = optax.sigmoid_binary_cross_entropy(logits, labels)
                return jnp.sum(losses * weights) / jnp.maximum(jnp.sum(weights), 1.0)
            values = self.model.apply(p, e, method=Discriminator.value)
            return jnp.sum(valid * (values - targets) ** 2) / jnp.maximum(jnp.sum(valid), 1.0)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = self.optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    # ------------------------------------------------------------------ inference
    def compare(self, a: Sequence[Program], b: Sequence[Program], watch: Stopwatch) -> np.ndarray:
        """P(a[i] better than b[i]): each distinct program embedded once, all pairs in one call.
        Encoding is timed on `watch`."""
        with watch("encoding"):
            index: dict[tuple, int] = {}
            for p in (*a, *b):
                index.setdefault((p.nodes, p.outputs), len(index))
            unique = list({(p.nodes, p.outputs): p for p in (*a, *b)}.values())
            n = len(a)
            slots = pad_count(max(len(unique), n), SMALLEST_BATCH)
            graph = self.encoder.batch(unique, min_graphs=slots)
            ia = np.zeros(slots, np.int32)
            ib = np.zeros(slots, np.int32)
            ia[:n] = [index[(p.nodes, p.outputs)] for p in a]
            ib[:n] = [index[(p.nodes, p.outputs)] for p in b]
        return np.asarray(self._score(self.params, graph, ia, ib))[:n].astype(np.float64)

    def _score_pairs(self, params, graph, ia, ib):
        e = self.model.apply(params, graph, method=Discriminator.embed)
        if self.options.head == "pair":
            logits = self.model.apply(params, e[ia], e[ib], method=Discriminator.pair_logits)
        else:
            values = self.model.apply(params, e, method=Discriminator.value)
            logits = (values[ia] - values[ib]) * 10.0  # rank differences of ~0.1 are confident
        return jax.nn.sigmoid(logits)


def _smallest_program(encoder: GraphEncoder) -> Program:
    """A program of inputs only, enough to give `init` the feature sizes."""
    vocab = encoder.vocab
    return Program(tuple(Node(INPUT) for _ in vocab.inputs), (0,) * len(vocab.output_types), "init")
