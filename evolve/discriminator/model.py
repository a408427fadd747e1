"""The GPS-style graph network and its heads (flax linen).

Each layer adds local message passing with edge features (GINE: a message is relu(h_sender + W e))
and global self-attention among the nodes of the same graph to a residual, then normalizes, then a
feed-forward block (Rampasek et al., "Recipe for a General, Powerful, Scalable Graph Transformer").
Graphs are pooled (sum and mean, so sizes and counts are visible) to one embedding per program.

The pair head is antisymmetric by construction: logit(a, b) = f(a, b) - f(b, a), so
P(a > b) = sigmoid(logit) = 1 - P(b > a) up to float rounding. The value head predicts a fitness score
for the regression ablation.

Graphs come packed in bins (see encoding.py): attention is among the nodes of one bin that hold the
same graph, pooling sums each graph's node slots. Shapes are static (bins, bin size and graph slots
are array shapes), so one compilation serves every batch of the same padded shape. `trace_count()`
says how many times the forward pass was traced (compiled).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from evolve.discriminator.encoding import GraphBatch

_trace_count = [0]


def trace_count() -> int:
    """How many times the forward pass has been traced (compiled) in this process."""
    return _trace_count[0]


class GPSLayer(nn.Module):
    width: int
    heads: int
    attention: bool

    @nn.compact
    def __call__(self, h, batch: GraphBatch, node_mask, same_graph):
        messages = nn.relu(h[batch.senders] + nn.Dense(self.width)(batch.edges)) * batch.edge_mask[:, None]
        gathered = jax.ops.segment_sum(messages, batch.receivers, num_segments=h.shape[0])
        local = nn.Dense(self.width)(nn.relu(nn.Dense(self.width)(h + gathered)))
        out = h + local
        if self.attention:
            bins, size = batch.node_graph.shape
            attention = nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.width)
            attended = attention(h.reshape(bins, size, self.width), mask=same_graph[:, None])
            out = out + attended.reshape(-1, self.width)
        out = nn.LayerNorm()(out)
        out = nn.LayerNorm()(out + nn.Dense(self.width)(nn.relu(nn.Dense(2 * self.width)(out))))
        return out * node_mask[:, None]


class ProgramEncoder(nn.Module):
    """Graphs -> one embedding per graph slot [n_graphs, width]."""

    width: int = 64
    depth: int = 3
    heads: int = 4
    attention: bool = True

    @nn.compact
    def __call__(self, batch: GraphBatch) -> jax.Array:
        _trace_count[0] += 1
        n_graphs = batch.n_node.shape[0]
        graph = batch.node_graph.reshape(-1)
        node_mask = graph < n_graphs
        same_graph = batch.node_graph[:, :, None] == batch.node_graph[:, None, :]
        h = nn.Dense(self.width)(batch.nodes.reshape(graph.shape[0], -1)) * node_mask[:, None]
        for _ in range(self.depth):
            h = GPSLayer(self.width, self.heads, self.attention)(h, batch, node_mask, same_graph)
        total = jax.ops.segment_sum(h, graph, num_segments=n_graphs + 1)[:n_graphs]
        mean = total / jnp.maximum(batch.n_node, 1)[:, None]
        return nn.Dense(self.width)(jnp.concatenate([total / 8.0, mean], axis=-1))


class PairHead(nn.Module):
    """logit P(a > b) from two embeddings, antisymmetric in (a, b): f(a, b) - f(b, a), where f is an
    MLP on the concatenation [a, b]. Its first layer is applied to a and b apart (W [a, b] = Wa a +
    Wb b), so a batch of pairs costs a projection per embedding, not a 2w-wide product per pair."""

    width: int = 64

    def setup(self):
        self.first = SplitDense(self.width, name="Dense_0")
        self.hidden = nn.Dense(self.width, name="Dense_1")
        self.last = nn.Dense(1, name="Dense_2")

    def __call__(self, a: jax.Array, b: jax.Array) -> jax.Array:
        a_first, a_second = self.first(a)
        b_first, b_second = self.first(b)
        return self._rest(a_first + b_second) - self._rest(b_first + a_second)

    def all_pairs(self, e: jax.Array) -> jax.Array:
        """[n, n] logits of every ordered pair of the n embeddings: f is computed once per pair and
        the antisymmetric part is f - f transposed."""
        first, second = self.first(e)
        f = self._rest(first[:, None] + second[None, :])
        return f - f.T

    def _rest(self, pre_activation: jax.Array) -> jax.Array:
        return self.last(nn.relu(self.hidden(nn.relu(pre_activation))))[..., 0]


class SplitDense(nn.Module):
    """A dense layer on [a, b] (parameters as nn.Dense's on 2w inputs) that returns its two halves
    apart: (Wa a + bias, Wb b), so the caller adds them per pair."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        d = x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (2 * d, self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return x @ kernel[:d] + bias, x @ kernel[d:]


class Discriminator(nn.Module):
    """The GNN with both heads; `embed`, `pair_logits` and `value` are its entry points."""

    width: int = 64
    depth: int = 3
    heads: int = 4
    attention: bool = True

    def setup(self):
        self.encoder = ProgramEncoder(self.width, self.depth, self.heads, self.attention)
        self.pair = PairHead(self.width)
        self.value_head = nn.Sequential([nn.Dense(self.width), nn.relu, nn.Dense(1)])

    def __call__(self, batch: GraphBatch) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Touches every submodule (for init): embeddings, all-pairs logits and values."""
        e = self.embed(batch)
        return e, self.all_pair_logits(e), self.value(e)

    def embed(self, batch: GraphBatch) -> jax.Array:
        return self.encoder(batch)

    def pair_logits(self, a: jax.Array, b: jax.Array) -> jax.Array:
        return self.pair(a, b)

    def all_pair_logits(self, e: jax.Array) -> jax.Array:
        """[n, n]: pair_logits(e[i], e[j]) for every i, j."""
        return self.pair.all_pairs(e)

    def value(self, e: jax.Array) -> jax.Array:
        return self.value_head(e)[..., 0]
