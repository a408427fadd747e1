"""RL loss functions: search DQN-style losses, the space of Co-Reyes et al. 2021 (issue 10).

A program computes the loss of each transition of a value-based agent from the online and target
Q-networks and the transition (rl_ops: types, op table, validity; rl_programs: the known losses,
random programs and the original mutation). It is trained as the loss of a DQN on gymnax
environments (rl_dqn, rl_evaluator, built only where evaluations run), exported as a JAX loss
function in the rlax calling convention (rl_export), and fingerprinted by its loss values on a fixed
random batch (rl_loss_fn.Probe).

Configuration (the evaluator reads `space.config`, an RLConfig):

    cheap   CartPole-v1 only (the hurdle), 5,000 steps, 2 seeds: benchmarks and tests
    full    CartPole-v1 10,000 steps, then Acrobot-v1 20,000, 2 seeds

with the held-out suite (`suite="heldout"`), never used for fitness, Catch-bsuite (cheap, 3,000
steps) and Catch-bsuite 5,000 and Breakout-MinAtar 20,000 (full). The budgets are those at which the
hand-written DQN was measured to learn each task (rl_dqn's sizes). `train_steps` (the same budget
on every environment) and `seeds` override the preset. The full preset's third environment was
Pong-misc until its cost was measured: an interpreted update of a loss with state ops costs about
24 ms there (3,600-number observations; about 100 us on CartPole), 8 CPU minutes per candidate
(rl_envs, benchmarks/rl_eval.py --update-cost), and about half the programs of a search have state
ops; no other discrete gymnax task with small observations is learned by this DQN in a
budget a search can pay (rl_envs says which were tried).

This module is the space's grammar, which `evolve show`, `top`, `export` and a Ray driver build: it
imports no JAX. Fingerprints compile a probe on their first call.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Sequence

import numpy as np

from evolve import hookimpl
from evolve.errors import OptionError
from evolve.ops import Vocabulary
from evolve.program import Program
from evolve.space import Evaluator, SearchSpace

from evolve.search_spaces import rl_export, rl_ops, rl_programs


@dataclasses.dataclass(frozen=True)
class RLConfig:
    """What a candidate is trained on; set by the space's options, read by the evaluator.

    name: the preset ("cheap" or "full").
    suite: "train" (the fitness: the hurdle, then `envs`) or "heldout" (`heldout_envs` only, no
        hurdle; reports generalization, never used for fitness).
    hurdle: the gymnax id trained first on the train suite.
    hurdle_fraction: a candidate whose normalized hurdle score is below this fraction of DQN's stops
        there, as in the original (which stopped below an absolute 0.6 on CartPole-v0, about two
        thirds of what DQN reached; relative, so one value serves every budget).
    envs: the training environments after the hurdle (gymnax ids; rl_envs.ENVIRONMENTS).
    heldout_envs: the held-out environments.
    train_steps: environment steps per environment and seed (one update per step after warm-up),
        for every environment `env_steps` does not name.
    seeds: independent training runs per environment (vmapped); scores are their mean.
    env_steps: (environment, steps) pairs: the budgets of environments that need their own.
    """

    name: str
    suite: str
    hurdle: str
    hurdle_fraction: float
    envs: tuple[str, ...]
    heldout_envs: tuple[str, ...]
    train_steps: int
    seeds: int
    env_steps: tuple[tuple[str, int], ...] = ()

    def steps_for(self, env: str) -> int:
        """The environment steps a candidate trains on `env` (per seed)."""
        return dict(self.env_steps).get(env, self.train_steps)

    @property
    def suite_envs(self) -> tuple[str, ...]:
        """Every environment this configuration trains on, in order (the hurdle first on train)."""
        return (self.hurdle, *self.envs) if self.suite == "train" else self.heldout_envs


PRESETS = {
    "cheap": RLConfig("cheap", "train", "CartPole-v1", 0.5, (), ("Catch-bsuite",), 5_000, 2, (("Catch-bsuite", 3_000),)),
    "full": RLConfig(
        "full", "train", "CartPole-v1", 0.5, ("Acrobot-v1",), ("Catch-bsuite", "Breakout-MinAtar"), 10_000, 2,
        (("Acrobot-v1", 20_000), ("Catch-bsuite", 5_000), ("Breakout-MinAtar", 20_000)),
    ),
}
SUITES = ("train", "heldout")
SEED_CHOICES = {"all": rl_programs.SEEDS, "dqn": ("dqn",), "none": ()}
MAX_TRAIN_STEPS = 1_000_000
MAX_SEEDS = 64
#: every known loss (DQNClipped has 15 ops) fits in a program of DQN_OPS + MIN_EXTRA_OPS
MIN_EXTRA_OPS = 8
MAX_EXTRA_OPS = 64


class RLLosses(SearchSpace):
    export_formats = ("jax", "text", "json")

    def __init__(
        self,
        config: str = "cheap",
        suite: str = "train",
        train_steps: int | None = None,
        seeds: int | None = None,
        seed_with: str = "all",
        extra_ops: int = rl_ops.EXTRA_OPS,
        fresh_probability: float = rl_programs.FRESH_PROBABILITY,
        envs: str | Sequence[str] | None = None,
        heldout_envs: str | Sequence[str] | None = None,
    ):
        """config: "cheap" (CartPole only, short: benchmarks, tests) or "full" (CartPole, Acrobot).
        suite: "train" (fitness) or "heldout" (generalization only).
        train_steps, seeds: environment steps per environment and seed, runs per environment
        (default: the preset's).
        seed_with: seed programs, "all" (DQN, Double DQN), "dqn" or "none".
        extra_ops: random ops after DQN's 7 in a program (the original's 14).
        fresh_probability: the chance a child is a new random program (the original's 0.05).
        envs: the training environments after the CartPole-v1 hurdle, gymnax ids comma-separated
            ("Acrobot-v1,Catch-bsuite") or a list (default: the preset's; rl_envs.ENVIRONMENTS
            lists those with a return range); each trains the preset's steps for it, or
            `train_steps`.
        heldout_envs: the held-out environments, likewise."""
        if config not in PRESETS:
            raise OptionError(f"unknown configuration {config!r}; known: {', '.join(PRESETS)}")
        if suite not in SUITES:
            raise OptionError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
        preset = PRESETS[config]
        if train_steps is not None:  # one budget for every environment
            preset = dataclasses.replace(preset, train_steps=train_steps, env_steps=())
        train_steps = preset.train_steps
        seeds = preset.seeds if seeds is None else seeds
        if not _is_int(train_steps) or not 1 <= train_steps <= MAX_TRAIN_STEPS:
            raise OptionError(f"train_steps must be an integer from 1 to {MAX_TRAIN_STEPS}, got {train_steps!r}")
        if not _is_int(seeds) or not 1 <= seeds <= MAX_SEEDS:
            raise OptionError(f"seeds must be an integer from 1 to {MAX_SEEDS}, got {seeds!r}")
        if seed_with not in SEED_CHOICES:
            raise OptionError(f"seed_with must be one of {', '.join(SEED_CHOICES)}, got {seed_with!r}")
        if not _is_int(extra_ops) or not MIN_EXTRA_OPS <= extra_ops <= MAX_EXTRA_OPS:
            raise OptionError(f"extra_ops must be an integer from {MIN_EXTRA_OPS} (room for the known losses) to {MAX_EXTRA_OPS},"
                              f" got {extra_ops!r}")
        if isinstance(fresh_probability, bool) or not isinstance(fresh_probability, (int, float)) or not 0 <= fresh_probability <= 1:
            raise OptionError(f"fresh_probability must be a number from 0 to 1, got {fresh_probability!r}")
        self.config = dataclasses.replace(
            preset, suite=suite, train_steps=train_steps, seeds=seeds,
            envs=preset.envs if envs is None else _environments("envs", envs, exclude=preset.hurdle),
            heldout_envs=preset.heldout_envs if heldout_envs is None else _environments("heldout_envs", heldout_envs),
        )
        self.seed_with = seed_with
        self.fresh_probability = float(fresh_probability)
        self._vocab = rl_ops.vocabulary(extra_ops)
        self._sampler = rl_programs.OpSampler(self._vocab)

    @property
    def vocabulary(self) -> Vocabulary:
        return self._vocab

    def build_evaluator(self) -> Evaluator:
        """The environments and the DQN compiled once per environment (rl_evaluator)."""
        from evolve.search_spaces.rl_evaluator import RLLossEvaluator

        return RLLossEvaluator(self)

    # ------------------------------------------------------------------ programs
    @functools.cached_property
    def _seeds(self) -> list[Program]:
        return [rl_programs.seed_program(name, self._vocab) for name in SEED_CHOICES[self.seed_with]]

    def seed_programs(self, rng: np.random.Generator) -> list[Program]:
        """DQN and Double DQN, each after random ops nothing reads yet (rl_programs)."""
        return list(self._seeds)

    def random_program(self, rng: np.random.Generator) -> Program:
        """The original's bootstrapped random program: DQN's 7 ops, then random ops."""
        return rl_programs.random_program(self._vocab, rng, self._sampler)

    def mutate(self, program: Program, rng: np.random.Generator) -> Program:
        """The original's mutation: one node's op and arguments redrawn, or a new random program."""
        return rl_programs.mutate(program, self._vocab, rng, self.fresh_probability, self._sampler)

    def known_loss(self, name: str) -> Program:
        """A published loss as a program of this space: dqn, double_dqn, dqn_reg, dqn_clipped."""
        if name not in rl_programs.KNOWN:
            raise OptionError(f"unknown loss {name!r}; known: {', '.join(rl_programs.KNOWN)}")
        return rl_programs.seed_program(name, self._vocab)

    # ------------------------------------------------------------------ fingerprints
    @functools.cached_property
    def _probe(self):
        from evolve.search_spaces.rl_loss_fn import Probe

        return Probe(self._vocab)

    def fingerprints(self, programs: Sequence[Program]) -> list[str]:
        """Loss values on a fixed random batch and networks, to 5 significant digits, hashed."""
        return self._probe.fingerprints(programs)

    def fingerprint(self, program: Program) -> str:
        return self.fingerprints([program])[0]

    # ------------------------------------------------------------------ export
    def describe(self, program: Program) -> str:
        return rl_export.formula(program, self._vocab)

    def export(self, program: Program, format: str) -> str:
        self.check_export_format(format)
        if format == "json":
            return program.to_json(indent=2)
        if format == "text":
            return rl_export.text(program, self._vocab)
        return rl_export.to_source(program, self._vocab)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _environments(option: str, value, exclude: str | None = None) -> tuple[str, ...]:
    """The environments an option names: a comma-separated string (the CLI's --space-opt) or a
    list of gymnax ids, each once, each with a return range (rl_envs.ENVIRONMENTS)."""
    from evolve.search_spaces.rl_envs import ENVIRONMENTS

    if isinstance(value, str):
        names = [name.strip() for name in value.split(",") if name.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(name, str) for name in value):
        names = list(value)
    else:
        raise OptionError(f"{option} must be gymnax ids, comma-separated or a list, got {value!r}")
    unknown = [name for name in names if name not in ENVIRONMENTS]
    if unknown:
        raise OptionError(f"{option}: no return range for {', '.join(unknown)}; known: {', '.join(ENVIRONMENTS)}")
    if len(set(names)) != len(names):
        raise OptionError(f"{option} names an environment twice: {', '.join(names)}")
    if exclude in names:
        raise OptionError(f"{option} names {exclude}, the hurdle, which always comes first: name the environments after it")
    if option == "heldout_envs" and not names:
        raise OptionError("heldout_envs must name at least one environment")
    return tuple(names)


@hookimpl
def evolve_search_spaces():
    return {"rl-losses": RLLosses}
