"""ML optimizers: search for elementwise update rules like Adam and Lion (issue 5).

A program maps (g, p, m, v, t) to the direction u and the new state (m, v); training does
p <- p - lr * u (see optimizer_programs). Each candidate trains every task of a suite
(optimizer_tasks) for `steps` full-batch steps, at every learning rate of `lr_grid` and for `seeds`
initialisations, in one call of a function compiled once per process (optimizer_training).

Fitness, normalized against Adam on the same tasks and settings:

    loss(task)  = min over lr of (mean over seeds of the final loss)    # the best learning rate
    score(task) = log(L0 / floor(loss)) / log(L0 / floor(loss_adam))    # L0: loss at initialisation
    fitness     = mean over tasks of score clipped to [-1, 2]

where floor(x) = max(x, 1e-6 * L0): a millionfold reduction is as good as it gets (a classifier
that separates its data drives cross-entropy to 0, and log 0 has no scale). So Adam scores exactly 1,
a program that does not move the parameters scores 0, and a fitness above 1 beats Adam. The log makes "10x lower loss" count the same on every task; the clip keeps one task
(a Rosenbrock run that lands on the minimum, a diverging one) from deciding alone. A learning rate
whose runs end non-finite is skipped; a task on which every learning rate does is a failure.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from evolve import hookimpl
from evolve.errors import OptionError
from evolve.interpreter import Interpreter, LoweredPrograms, bucket_size, enable_compilation_cache
from evolve.ops import Vocabulary
from evolve.program import Program
from evolve.space import Evaluation, SearchSpace

from evolve.search_spaces import optimizer_export, optimizer_programs, optimizer_tasks
from evolve.search_spaces.optimizer_training import program_update, suite_trainer

DEFAULT_LR_GRID = (1e-3, 1e-2, 1e-1, 1.0)
SCORE_RANGE = (-1.0, 2.0)
LOSS_FLOOR = 1e-6  # relative to the loss at initialisation
SEED_CHOICES = {"all": ("sgd", "momentum", "adam", "lion"), "sgd": ("sgd",), "none": ()}
#: probe rollout for behaviour fingerprints: steps, elements, learning rate
PROBE_STEPS, PROBE_SIZE, PROBE_LR = 8, 12, 0.1


class Optimizers(SearchSpace):
    export_formats = ("optax", "text", "json")

    def __init__(
        self,
        suite: str = "train",
        steps: int = 100,
        seeds: int = 2,
        lr_grid: list[float] | tuple[float, ...] = DEFAULT_LR_GRID,
        seed_with: str = "all",
        max_nodes: int = 40,
    ):
        """suite: "train" (what a search optimizes) or "heldout" (generalization check).
        steps: training steps per task; seeds: initialisations per task and learning rate.
        lr_grid: the learning rates tried; each task takes the program's best.
        seed_with: the seed programs, "all" (SGD, momentum, Adam, Lion), "sgd" or "none"."""
        if steps < 1 or seeds < 1:
            raise OptionError("steps and seeds must be at least 1")
        if seed_with not in SEED_CHOICES:
            raise OptionError(f"seed_with must be one of {', '.join(SEED_CHOICES)}, got {seed_with!r}")
        ok = isinstance(lr_grid, (list, tuple)) and all(isinstance(lr, (int, float)) and not isinstance(lr, bool) for lr in lr_grid)
        lrs = [float(lr) for lr in lr_grid] if ok else []
        if not lrs or not all(math.isfinite(lr) and lr > 0 for lr in lrs):
            raise OptionError(f"lr_grid must be a non-empty list of positive learning rates, got {lr_grid!r}")
        enable_compilation_cache()
        self.seed_with = seed_with
        self.tasks = suite_tasks = optimizer_tasks.suite(suite)
        self.task_names = tuple(t.name for t in suite_tasks)
        self._vocab = optimizer_programs.vocabulary(max_nodes)
        self.interpreter = Interpreter(self._vocab)
        self._lrs = jnp.asarray(lrs, jnp.float32)
        self.lr_grid = tuple(lrs)
        self.n_seeds = seeds
        self._seeds = jnp.arange(seeds, dtype=jnp.int32)
        self._trainer = suite_trainer(self.interpreter, suite_tasks, steps)
        self._probe = jax.jit(jax.vmap(self._rollout, in_axes=(0, None)))
        self._probe_inputs = _probe_problem()
        self.reference = self.losses(optimizer_programs.adam())
        initial, adam, _ = self.reference
        stuck = [n for n, l0, la in zip(self.task_names, initial, adam) if not la < l0]
        if stuck:
            raise OptionError(f"Adam does not reduce the loss of {', '.join(stuck)} in {steps} steps; raise steps")

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    # ------------------------------------------------------------------ programs
    def seed_programs(self, rng: np.random.Generator) -> list[Program]:
        return [optimizer_programs.SEEDS[name]() for name in SEED_CHOICES[self.seed_with]]

    def random_program(self, rng: np.random.Generator) -> Program:
        """With seeds, a seed mutated 1-3 times: almost every random DAG fails to train anything, so a
        population filled with them would spend the budget on failures. Without seeds, a random DAG."""
        seeds = self.seed_programs(rng)
        if not seeds:
            return super().random_program(rng)
        program = seeds[int(rng.integers(len(seeds)))]
        for _ in range(int(rng.integers(1, 4))):
            program = self.mutate(program, rng)
        return program

    # ------------------------------------------------------------------ evaluation
    def _one(self, program: Program) -> LoweredPrograms:
        return jax.tree.map(lambda a: jnp.asarray(a[0]), self.interpreter.lower([program]))

    def training_losses(self, program: Program) -> tuple[np.ndarray, np.ndarray]:
        """One call of the compiled trainer: losses at initialisation [tasks, seeds] and final
        losses [tasks, lrs, seeds]."""
        initial, final = self._trainer(self._one(program), self._lrs, self._seeds)
        return np.asarray(initial, np.float64), np.asarray(final, np.float64)

    def losses(self, program: Program) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per task: the loss at initialisation, the best (over the lr grid) mean final loss, and the
        learning rate that gave it; NaN where every learning rate ended non-finite."""
        initial, final = self.training_losses(program)
        initial = initial.mean(axis=1)
        with np.errstate(invalid="ignore", over="ignore"):
            per_lr = final.mean(axis=2)  # [tasks, lrs]
        per_lr[~np.isfinite(per_lr)] = np.nan
        best, best_lr = np.full(len(initial), np.nan), np.full(len(initial), np.nan)
        for k, row in enumerate(per_lr):
            if not np.all(np.isnan(row)):
                best[k] = np.nanmin(row)
                best_lr[k] = self.lr_grid[int(np.nanargmin(row))]
        return initial, best, best_lr

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        return [self._evaluate(p) for p in programs]

    def _evaluate(self, program: Program) -> Evaluation:
        _, loss, lr = self.losses(program)
        ref_initial, ref_loss, _ = self.reference
        failed = [n for n, l in zip(self.task_names, loss) if np.isnan(l)]
        if failed:
            return Evaluation.failure(f"non-finite loss at every learning rate on {', '.join(failed)}")
        floor = LOSS_FLOOR * ref_initial
        scores = np.log(ref_initial / np.maximum(loss, floor)) / np.log(ref_initial / np.maximum(ref_loss, floor))
        clipped = np.clip(scores, *SCORE_RANGE)
        metrics: dict[str, float] = {}
        for k, name in enumerate(self.task_names):
            metrics[f"loss/{name}"] = float(loss[k])
            metrics[f"score/{name}"] = float(scores[k])
            metrics[f"lr/{name}"] = float(lr[k])
        return Evaluation(float(np.mean(clipped)), metrics)

    # ------------------------------------------------------------------ fingerprints
    def _rollout(self, program: LoweredPrograms, problem: tuple[jax.Array, jax.Array]) -> jax.Array:
        """The directions u of PROBE_STEPS steps on a fixed noisy quadratic: a behaviour signature."""
        scales, noise = problem
        init, update = program_update(self.interpreter, program, jnp.float32(PROBE_LR))

        def step(carry, inputs):
            params, state = carry
            t, eps = inputs
            new_params, state = update(params, scales * params + eps, state, t)
            return (new_params, state), (params - new_params) / PROBE_LR

        params = jnp.ones(PROBE_SIZE, jnp.float32)
        ts = jnp.arange(1, PROBE_STEPS + 1, dtype=jnp.float32)
        _, directions = jax.lax.scan(step, (params, init(params)), (ts, noise))
        return directions

    def fingerprints(self, programs: Sequence[Program]) -> list[str]:
        """Directions of a short probe rollout, to 5 significant digits, hashed."""
        lowered = self.interpreter.lower(programs, pad_to=bucket_size(len(programs)))
        rows = np.asarray(self._probe(lowered, self._probe_inputs), np.float64)[: len(programs)]
        out = []
        for row in rows.reshape(len(programs), -1):
            text = ",".join(f"{v:.5g}" for v in row.tolist())
            out.append(hashlib.blake2b(text.encode(), digest_size=16).hexdigest())
        return out

    def fingerprint(self, program: Program) -> str:
        return self.fingerprints([program])[0]

    # ------------------------------------------------------------------ export
    def describe(self, program: Program) -> str:
        return optimizer_export.update_rule_text(program)

    def to_optax(self, program: Program, learning_rate: float):
        """The live optax.GradientTransformation of `program`."""
        return optimizer_export.to_optax(program, self._vocab, learning_rate)

    def export(self, program: Program, format: str) -> str:
        self.check_export_format(format)
        if format == "json":
            return program.to_json(indent=2)
        if format == "text":
            return self.describe(program) + "\n"
        return optimizer_export.to_source(program)


def _probe_problem() -> tuple[jax.Array, jax.Array]:
    rng = np.random.default_rng(0)
    scales = jnp.asarray(rng.uniform(0.1, 2.0, PROBE_SIZE), jnp.float32)
    noise = jnp.asarray(0.3 * rng.normal(size=(PROBE_STEPS, PROBE_SIZE)), jnp.float32)
    return scales, noise


@hookimpl
def evolve_search_spaces():
    return {"optimizers": Optimizers}
