"""Online training: the choice of training pairs from the replay buffer, the optax steps.

A training step embeds a sample of M programs once and trains on all the pairs among them (an M x M
matrix, so the shape never changes): pairs are labelled by true fitness, near-ties are skipped, and a
pair of parent and child weighs more. Half the sample comes from the most recent individuals (with
their parents), half from the whole buffer, so the discriminator follows the search as it moves but
does not forget. A failed evaluation is kept with the worst fitness, so "fails" is learned too.

A training call runs many steps: their samples are drawn and laid out on the host first (numpy,
from encodings kept for every program in the buffer), then one jitted call scans over the steps,
so a call costs one dispatch, not one per step. Step k always draws its sample from a generator
seeded by (seed, k).

Each compiled shape keeps about 30 MB (memory.py), so training compiles as few as it can: every
call scans `scan_steps` steps (a longer call, the warm-up's, is several, its last padded with steps
that change nothing), and the batches' layout (bins, bin size) only grows, so a run compiles a few
training shapes, not one per layout its samples happen to need, and keeps only the last (on Nguyen-4
at 1,500 evaluations: 6 compiled and kept before, 1 kept after).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from evolve.discriminator.encoding import (INFERENCE_SHAPES, SMALLEST_BIN, EncodedProgram, GraphBatch, GraphEncoder,
                                           inference_chunks, pad_count)
from evolve.discriminator.memory import COMPILER_OPTIONS, release_freed_memory
from evolve.discriminator.model import Discriminator, trace_count
from evolve.discriminator.replay import WORST, BufferView, sample
from evolve.discriminator.stopwatch import Stopwatch
from evolve.ops import INPUT
from evolve.program import Node, Program, Spelling


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    head: str = "pair"  # "pair": binary cross-entropy on pairs; "value": regression on fitness rank
    learning_rate: float = 1e-3
    batch_programs: int = 64
    recent: int = 256
    tie_tolerance: float = 1e-6
    parent_child_weight: float = 2.0
    scan_steps: int = 16  # steps per compiled call: a call of more (the warm-up's) is several calls


class Trainer:
    """The model's parameters and optimizer state, the encodings of the buffer's programs, and the
    jitted training and scoring functions.

    `params` and `opt_state` are replaced (never changed in place) by a training call, so a reader
    on another thread always sees a whole set of parameters."""

    def __init__(self, model: Discriminator, encoder: GraphEncoder, options: TrainingOptions, seed: int):
        if options.head not in ("pair", "value"):
            raise ValueError(f"head must be 'pair' or 'value', got {options.head!r}")
        self.model = model
        self.encoder = encoder
        self.options = options
        self.seed = seed
        self.optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(options.learning_rate))
        sample_graph = encoder.batch([_smallest_program(encoder)])
        self.params = jax.jit(model.init, compiler_options=COMPILER_OPTIONS)(jax.random.PRNGKey(seed), sample_graph)
        self.opt_state = self.optimizer.init(self.params)
        release_freed_memory()
        self._train = jax.jit(self._train_steps, compiler_options=COMPILER_OPTIONS)
        self._score = jax.jit(self._score_pairs, compiler_options=COMPILER_OPTIONS)
        # (bins, bin size) of the training batches, which never shrinks (see _grow_layout)
        self.layout: tuple[int, int] = (0, 0)
        # the encodings of the buffer's last programs, in buffer order, as of `_mirrored` additions
        self._mirror: list[EncodedProgram] = []
        self._mirrored = 0

    # ------------------------------------------------------------------ training
    def train(self, view: BufferView, first_step: int, steps: int, watch: Stopwatch) -> tuple:
        """`steps` optimizer steps (numbered from `first_step`) on samples of the buffer as `view`
        shows it. Returns (params, opt_state, last loss) without installing them: the caller does,
        with whatever else must change at the same moment. Encoding is timed on `watch`."""
        opts = self.options
        m = opts.batch_programs
        columns = view.arrays
        with watch("encoding"):
            encoded = self._mirror_buffer(view)
        samples = [sample(columns, np.random.default_rng([self.seed, first_step + s]), m, opts.recent) for s in range(steps)]
        scan = max(opts.scan_steps, 1)
        padded = -(-steps // scan) * scan  # whole calls of `scan` steps; the steps beyond `steps` change nothing
        valid = np.zeros((padded, m), bool)
        index = np.zeros((padded, m), np.int64)
        for s, idx in enumerate(samples):
            valid[s, : len(idx)] = True
            index[s, : len(idx)] = idx
        fitness = np.where(valid, columns.fitness[index], WORST).astype(np.float32)
        with watch("encoding"):
            graphs = self.encoder.pack([[encoded[k] for k in idx] for idx in samples] + [[]] * (padded - steps), m,
                                       *self.layout)
        self._grow_layout(graphs)
        if opts.head == "pair":
            weights = self._pair_weights(columns, index, valid, fitness)
            targets = np.zeros((padded, m), np.float32)
        else:
            weights = np.zeros((padded, m, m), np.float32)
            ranked = np.sort(columns.fitness)
            targets = np.where(valid, np.searchsorted(ranked, fitness, side="right") / len(ranked), 0.0).astype(np.float32)
        active = np.arange(padded) < steps
        traced = trace_count()
        params, opt_state = self.params, self.opt_state
        for start in range(0, padded, scan):
            part = slice(start, start + scan)
            params, opt_state, losses = self._train(params, opt_state, GraphBatch(*(x[part] for x in graphs)), fitness[part],
                                                    weights[part], targets[part], valid[part], active[part])
        loss = float(losses[(steps - 1) % scan])
        if trace_count() != traced:  # it compiled: what the compiler freed goes back to the system
            release_freed_memory()
        return params, opt_state, loss

    def _grow_layout(self, graphs: GraphBatch) -> None:
        """Training batches keep the largest (bins, bin size) they had: their shape changes only as
        programs grow, a few times a run, not back and forth, and the compiled training call of the
        smaller shape, never called again, is dropped (it held about 30 MB)."""
        layout = tuple(graphs.nodes.shape[1:3])
        if layout != self.layout:
            if self.layout != (0, 0):
                self._train.clear_cache()
            self.layout = layout

    def forget_encodings(self) -> None:
        """The buffer was replaced (a checkpoint restored): encode it afresh on the next call."""
        self._mirror, self._mirrored = [], 0

    def _mirror_buffer(self, view: BufferView) -> list[EncodedProgram]:
        """Encodings of the view's programs, in order: only the programs added since the last call
        are encoded (the buffer only appends and drops its oldest)."""
        new = view.added - self._mirrored
        if not 0 <= new <= len(view.programs) or len(self._mirror) + new < len(view.programs):
            self._mirror, new = [], len(view.programs)
        if new:
            self._mirror += self.encoder.encode_uncached(view.programs[len(view.programs) - new :])
        del self._mirror[: len(self._mirror) - len(view.programs)]
        self._mirrored = view.added
        return self._mirror

    def _pair_weights(self, columns, index: np.ndarray, valid: np.ndarray, fitness: np.ndarray) -> np.ndarray:
        """[steps, m, m] weight of each pair (i < j): 0 for ties and padding, more for parent and child."""
        m = index.shape[1]
        real = fitness.astype(np.float64)
        apart = np.abs(real[:, :, None] - real[:, None, :]) > self.options.tie_tolerance
        both = valid[:, :, None] & valid[:, None, :]
        weights = (np.triu(np.ones((m, m), bool), 1) & apart & both).astype(np.float32)
        ids = np.where(valid, columns.ids[index], -2)
        parents = np.where(valid, columns.parents[index], -3)
        related = (parents[:, :, None] == ids[:, None, :]) | (ids[:, :, None] == parents[:, None, :])
        return weights * np.where(related, self.options.parent_child_weight, 1.0).astype(np.float32)

    def _train_steps(self, params, opt_state, graphs, fitness, weights, targets, valid, active):
        def one(carry, batch):
            *data, on = batch
            stepped = self._train_step(*carry, *data)
            return jax.tree.map(lambda new, old: jnp.where(on, new, old), stepped[:2], carry), stepped[2]

        (params, opt_state), losses = jax.lax.scan(one, (params, opt_state), (graphs, fitness, weights, targets, valid, active))
        return params, opt_state, losses

    def _train_step(self, params, opt_state, graph, fitness, weights, targets, valid):
        def loss_fn(p):
            e = self.model.apply(p, graph, method=Discriminator.embed)
            if self.options.head == "pair":
                logits = self.model.apply(p, e, method=Discriminator.all_pair_logits)
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
        """P(a[i] better than b[i]): each distinct program embedded once per chunk of pairs, with the
        parameters of the last training call installed. Encoding is timed on `watch`.

        The pairs are scored in the few shapes of `INFERENCE_SHAPES` (encoding.inference_chunks), padded
        up or split in chunks: each shape compiled keeps a few MB, and a batch of any size in a shape of
        its own compiled most of them. Padding and chunks change no probability beyond float rounding
        (a graph's embedding is computed from its own node slots alone)."""
        params = self.params
        with watch("encoding"):
            index: dict[Spelling, int] = {}
            ia = [index.setdefault(p.spelling, len(index)) for p in a]
            ib = [index.setdefault(p.spelling, len(index)) for p in b]
            unique = list({p.spelling: p for p in (*a, *b)}.values())
            encoded = self.encoder.encode_many(unique)
            counts = [e.n_node for e in encoded]
            size = pad_count(max(counts), SMALLEST_BIN)
            chunks = inference_chunks(ia, ib, counts, size)
        out = np.empty(len(a))
        traced = trace_count()
        for chunk in chunks:
            with watch("encoding"):
                graph = GraphBatch(*(x[0] for x in self.encoder.pack([[encoded[g] for g in chunk.members]], chunk.slots,
                                                                     chunk.bins, size, [chunk.placed])))
                local = {g: k for k, g in enumerate(chunk.members)}
                pairs = np.zeros((2, chunk.slots), np.int32)
                n = chunk.stop - chunk.start
                pairs[0, :n] = [local[g] for g in ia[chunk.start : chunk.stop]]
                pairs[1, :n] = [local[g] for g in ib[chunk.start : chunk.stop]]
            out[chunk.start : chunk.stop] = np.asarray(self._score(params, graph, pairs[0], pairs[1]))[:n]
        if trace_count() != traced:
            release_freed_memory()
        return out

    def warm_inference(self) -> None:
        """Compile inference in the shapes of `INFERENCE_SHAPES` for programs of up to 16 nodes, so
        that `compare` finds them compiled. Touches no shared encoder state (safe from a training thread)."""
        encoded = self.encoder.encode_uncached([_smallest_program(self.encoder)])
        for n, bins in INFERENCE_SHAPES:
            graph = GraphBatch(*(x[0] for x in self.encoder.pack([encoded], n, bins)))
            pairs = np.zeros((2, n), np.int32)
            np.asarray(self._score(self.params, graph, pairs[0], pairs[1]))
        release_freed_memory()

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
