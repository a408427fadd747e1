"""The online discriminator as a Predictor: it watches the search, trains as it goes, judges pairs.

Training is scheduled by the count of individuals seen, never by how they were batched: after the
`warmup`-th individual a training call of `warmup_steps` steps is due, then one of `steps` steps
every `train_every` individuals, an interval that grows by `train_every` with every `slow_down`
individuals seen (`training_due`): as the buffer fills, one more program changes it less, and the
steps that were most of a proposal's cost are spread out. Each step draws its sample from a
generator seeded by (seed, step).

Where the calls run is the `background` option:

- False (the default): in `observe`, before it returns. A run is reproducible step for step, and a
  predictor restored from a checkpoint and shown the same later individuals ends in exactly the
  state of the one that ran on, which exact resume (tests/test_resume.py) relies on.
- True: on a thread of the predictor's own (JAX releases the GIL while it computes), so proposals
  never wait for training: `compare` uses the parameters of the last finished call. Nor do they
  wait for compilations: the first call also compiles the few shapes inference runs in (programs
  of up to 16 nodes; on the sleep space a compilation on the proposal path cost 5 s under load,
  33 s of 38 in a 300-proposal profile). What a step
  samples then depends on how far the search got while the previous call ran, so a run is not
  reproducible step for step, nor is a resume exact. When evaluations come faster than training,
  at most one call waits behind the running one; calls due beyond it are dropped (counted in
  `metrics()["skipped_steps"]`), so the search never waits and the network trains on recent data.

`state()` is msgpack (flax.serialization): parameters, optimizer state, counters, training calls
still due, the training batches' layout (which never shrinks, so a resumed run trains in the shape
the first would have) and the buffer's programs as JSON. No pickle, so a checkpoint cannot carry code.

Memory is bounded: the buffer (`buffer_size` programs) with one encoding each, and the encodings of
the last 4,096 programs compared. On Nguyen problems an encoding (four small arrays) takes about 1.8
KB with its Python objects (tracemalloc: 10.5 MB for the 5,700 a 1,500-evaluation run holds), so
both at their bounds hold about 16 MB (measured before inference was bucketed, 3,400 more programs
in the buffer cost a 5,000-evaluation run 82 MB in all: most of it came with more compilations). Most of a run's memory is compiled code (about 30
MB per training shape, 3-6 MB per inference shape), so training compiles one shape at a time (see
training.py), inference runs in 4 shapes (encoding.INFERENCE_SHAPES) and compilations give back
what they freed (memory.py);
benchmarks/predictor_memory.py measures a run's peak against regularized evolution's.

JAX, flax and optax are imported when a discriminator is built, not with this module: the
plugin manager loads every predictor's module to list it and read its options from the constructor's
signature, and `evolve plugins` or `evolve top` must not pay seconds for a network they never run.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

import numpy as np

from evolve.discriminator.replay import BufferView, ReplayBuffer
from evolve.discriminator.stopwatch import Stopwatch
from evolve.population import Individual
from evolve.predictor import Predictor
from evolve.program import Program
from evolve.space import SearchSpace


def training_due(seen: int, train_every: int, slow_down: int) -> bool:
    """Whether a training call is due once `seen` individuals were seen: every `train_every`
    individuals until 2 * `slow_down` (0: always), then every `k * train_every` in the k-th block of
    `slow_down` individuals (with 250 and 4: every 8 from 500, every 24 at 1,500, every 80 at 5,000).
    A function of the count alone, so a resumed run trains exactly when the first would have."""
    blocks = seen // slow_down if slow_down else 0
    return seen % (train_every * max(1, blocks)) == 0


class OnlineDiscriminator(Predictor):
    """The GPS graph network trained online. Its `head` says what it learns: "pair" is the binary
    discriminator, "value" the regression ablation (compared by predicted fitness rank).

    Training is what buys accuracy: on Nguyen-4 after 300 evaluations, judging tournament parents
    against their mutated children (4 seeds), 2 steps per 4 evaluations at width 32 ranked them with
    AUC 0.77; 16 steps at width 64 reached AUC 0.85, and the 3% of children it liked best beat their
    parent 42% of the time (unguided: 4.5%). Without the attention blocks the network ranks as well
    (8 seeds: benchmarks/results/discriminator_quality_cheap.json) at two thirds of the cost of a
    step, so attention is off by default. Defaults follow that (benchmarks/predictor_cost.py
    measures what it costs per proposal)."""

    head = "pair"

    def __init__(
        self,
        space,
        width: int = 64,
        depth: int = 2,
        heads: int = 4,
        attention: bool = False,
        rw_steps: int = 8,
        learning_rate: float = 1e-3,
        batch_programs: int = 32,
        buffer_size: int = 5000,
        recent: int = 256,
        warmup: int = 100,
        warmup_steps: int = 100,
        train_every: int = 4,
        steps: int = 16,
        slow_down: int = 250,
        tie_tolerance: float | None = None,
        parent_child_weight: float = 2.0,
        background: bool = False,
        seed: int = 0,
    ):
        """width: the graph network's embedding size.
        depth: message-passing layers.
        heads: attention heads per layer (when attention is on).
        attention: self-attention among a program's nodes in each layer (GPS); off: message passing alone.
        rw_steps: random-walk structural encodings per node (0: none).
        learning_rate: AdamW's learning rate.
        batch_programs: programs per training step; the step trains on all pairs among them.
        buffer_size: programs kept for training (the oldest leave first).
        recent: half of a step's sample comes from this many most recent programs.
        warmup: individuals seen before the first training call (guidance starts after it).
        warmup_steps: steps of that first call.
        train_every: individuals between training calls at the start.
        steps: steps per training call after the first.
        slow_down: the interval between calls grows by train_every every this many individuals (0: fixed).
        tie_tolerance: fitness gaps below it are ties, never trained on (default: the space's fitness_resolution).
        parent_child_weight: the weight of a pair of parent and child against other pairs.
        background: train on a thread of its own, off the proposal path (not reproducible step for step).
        seed: initial parameters and training samples."""
        if min(width, depth, heads, batch_programs, buffer_size, train_every) < 1 or min(warmup, steps, rw_steps, slow_down) < 0:
            raise ValueError("sizes and counts must be positive")
        if width % heads:
            raise ValueError(f"width ({width}) must be a multiple of heads ({heads})")
        from evolve.discriminator.encoding import GraphEncoder
        from evolve.discriminator.model import Discriminator
        from evolve.discriminator.training import Trainer, TrainingOptions

        self.space = space
        self.encoder = GraphEncoder(space.vocabulary, rw_steps)
        # every training call scans `steps` steps at a time (the warm-up's too): one compiled length
        if tie_tolerance is None:
            tie_tolerance = getattr(space, "fitness_resolution", SearchSpace.fitness_resolution)
        if not tie_tolerance >= 0.0:
            raise ValueError(f"tie_tolerance must be at least 0, got {tie_tolerance}")
        options = TrainingOptions(self.head, learning_rate, batch_programs, recent, tie_tolerance, parent_child_weight,
                                  steps or warmup_steps or 1)
        self.trainer = Trainer(Discriminator(width, depth, heads, attention), self.encoder, options, seed)
        self.buffer = ReplayBuffer(buffer_size)
        self.seed = seed
        self.warmup, self.warmup_steps = warmup, warmup_steps
        self.train_every, self.steps, self.slow_down = train_every, steps, slow_down
        self.background = background
        self.held = False  # training calls due are skipped while a strategy holds training (over its share)
        self.seen = 0
        self.train_steps = 0
        self.skipped_steps = 0
        self.training_watch = Stopwatch()  # sections: training, encoding (on the training thread if background)
        self.inference_watch = Stopwatch()  # sections: inference, encoding
        self.pairs_compared = 0
        self.last_loss = float("nan")
        # background training: calls due (their step counts; the first is running), and the thread
        # running them, None when idle. Both change only under the lock, as do the buffer and the
        # installed parameters while a thread may read them.
        self._due: list[int] = []
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the contract
    def observe(self, individuals: Sequence[Individual]) -> None:
        for ind in individuals:
            with self._lock:
                self.buffer.add(ind.id, ind.parent, ind.fitness, ind.program)
            self.seen += 1
            if self.seen == self.warmup:
                self._schedule(self.warmup_steps)
            elif self.seen > self.warmup and training_due(self.seen, self.train_every, self.slow_down):
                self._schedule(self.steps)

    def compare(self, a: Sequence[Program], b: Sequence[Program]) -> np.ndarray:
        if len(a) != len(b):
            raise ValueError(f"compare needs pairs: got {len(a)} and {len(b)} programs")
        if not a:
            return np.zeros(0)
        with self.inference_watch("inference"):
            p = self.trainer.compare(a, b, self.inference_watch)
        self.pairs_compared += len(a)
        return p

    @property
    def ready(self) -> bool:
        return self.seen >= self.warmup and self.train_steps > 0

    def metrics(self) -> dict[str, Any]:
        trained = self.training_watch.total()
        return {
            "seen": self.seen,
            "buffer": len(self.buffer),
            "train_steps": self.train_steps,
            "skipped_steps": self.skipped_steps,
            "background_training": self.background,
            "train_seconds": trained,
            "train_encoding_seconds": self.training_watch["encoding"],
            "train_wait_seconds": 0.0 if self.background else trained,
            "inference_seconds": self.inference_watch.total(),
            "inference_encoding_seconds": self.inference_watch["encoding"],
            "pairs_compared": self.pairs_compared,
            "loss": self.last_loss,
        }

    def hold_training(self, held: bool) -> None:
        self.held = held

    def close(self) -> None:
        """The run is over: calls due but not started are dropped, the running one is waited for
        (a process must not exit while its training thread is inside JAX: it aborts)."""
        with self._lock:
            del self._due[1:]
        self.settle()

    def settle(self) -> None:
        """Wait until no training call is due (at once when training is not in the background)."""
        while True:
            with self._lock:
                worker = self._worker
            if worker is None:
                return
            worker.join()

    # ------------------------------------------------------------------ training
    def _schedule(self, steps: int) -> None:
        if len(self.buffer) < 2 or steps == 0:
            return
        if self.held and self.train_steps > 0:  # never the warm-up call: without it nothing is guided
            self.skipped_steps += steps
            return
        if not self.background:
            self._train(steps)
            return
        with self._lock:
            if len(self._due) >= 2:
                self.skipped_steps += steps
                return
            self._due.append(steps)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="evolve-discriminator-training", daemon=True)
                self._worker.start()

    def _work(self) -> None:
        """Run the calls due, one by one, each on the buffer as it is when the call starts."""
        while True:
            with self._lock:
                if not self._due:
                    self._worker = None
                    return
                steps, view, first = self._due[0], self.buffer.view(), self.train_steps
            self._run(view, first, steps)

    def _train(self, steps: int) -> None:
        """One training call of `steps` steps, here and now."""
        self._run(self.buffer.view(), self.train_steps, steps)

    def _run(self, view: BufferView, first: int, steps: int) -> None:
        with self.training_watch("training"):
            params, opt_state, loss = self.trainer.train(view, first, steps, self.training_watch)
            if self.background and first == 0:
                # before the predictor is ready: proposals later find these shapes compiled
                self.trainer.warm_inference()
        with self._lock:
            self.trainer.params, self.trainer.opt_state = params, opt_state
            self.train_steps += steps
            self.last_loss = loss
            if self._due:
                self._due.pop(0)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> bytes:
        from flax import serialization

        with self._lock:
            b = self.buffer
            return serialization.msgpack_serialize({
                "params": serialization.to_state_dict(self.trainer.params),
                "opt_state": serialization.to_state_dict(self.trainer.opt_state),
                "counters": {"seen": self.seen, "train_steps": self.train_steps, "skipped_steps": self.skipped_steps},
                "due": np.asarray(self._due, np.int64),
                "training_layout": np.asarray(self.trainer.layout, np.int64),
                "training_seconds": dict(self.training_watch.seconds),
                "buffer": {
                    "ids": np.asarray(b.ids, np.int64),
                    "parents": np.asarray(b.parents, np.int64),
                    "fitness": np.asarray(b.fitness, np.float64),
                    "programs": {str(k): p.to_json() for k, p in enumerate(b.programs)},
                },
            })

    def restore(self, state: bytes) -> None:
        from flax import serialization

        self.settle()
        data = serialization.msgpack_restore(state)
        self.trainer.params = serialization.from_state_dict(self.trainer.params, data["params"])
        self.trainer.opt_state = serialization.from_state_dict(self.trainer.opt_state, data["opt_state"])
        counters = data["counters"]
        self.seen, self.train_steps = int(counters["seen"]), int(counters["train_steps"])
        self.skipped_steps = int(counters.get("skipped_steps", 0))
        self.training_watch.seconds = {k: float(v) for k, v in data.get("training_seconds", {}).items()}
        saved = data["buffer"]
        buffer = ReplayBuffer(self.buffer.capacity)
        programs = saved["programs"]
        for k, (id_, parent, fitness) in enumerate(zip(saved["ids"], saved["parents"], saved["fitness"])):
            buffer.add(int(id_), None if parent < 0 else int(parent), float(fitness), Program.from_json(programs[str(k)]))
        self.buffer = buffer
        self.trainer.forget_encodings()
        self.trainer.layout = tuple(np.asarray(data.get("training_layout", (0, 0)), np.int64).tolist())
        for steps in np.asarray(data.get("due", []), np.int64).tolist():  # calls due at the checkpoint
            self._schedule(steps)
