"""The heavy half of the rl-losses space: a DQN trained with each candidate loss on gymnax
environments (rl_dqn, rl_envs), compiled once per process and environment, and scored against DQN.

Fitness, as in Co-Reyes et al. 2021 with DQN as the unit (as Adam is on the optimizer suite):

    normalized(env) = mean over seeds of clip((R - R_min) / (R_max - R_min), 0, 1)
                      R: the mean return of the run's last 50 training episodes (rl_envs ranges)
    score(env)      = normalized(env) / normalized_DQN(env)
    fitness         = sum over the suite of score(env) / number of environments in the suite

On the training suite the first environment (CartPole-v1) is the hurdle: a candidate whose score
there is below the configuration's `hurdle_fraction` stops and keeps its hurdle score (the other
environments count 0), as the original stopped below a normalized 0.6. The original's threshold was
absolute; this one is relative to DQN because the scaled-down budgets leave DQN itself well below the
top of the range. So DQN scores exactly 1, and above 1 beats it. The held-out suite (the space's
`suite="heldout"`: another gymnax family, never part of a search's fitness) is scored the same way,
without a hurdle, to measure generalization. Metrics: return/ENV, normalized/ENV, score/ENV, and
hurdle_passed.

A failed evaluation, with its reason: a non-finite loss or gradient, a diverging Q (|Q| above
rl_dqn.Q_LIMIT), or a loss whose gradient with respect to the online network is zero on every update.

Up to three compiled DQNs per environment, one per loss form (rl_loss_fn.LOSS_FORMS and its
docstring say why), each compiled on the first program that needs it, DQN's own when the evaluator
is built (its reference run): "no states" for programs none of whose ops reads or makes a state,
"states" for those some of whose ops do, "network inside" for those applying the network to a state
they computed (about 2% of the programs of a search walk, 15% of the children of DQN). All compute
the same loss; the narrower ones cost less. Where states are narrow anyway (fewer than
NARROW_STATES times as many numbers as actions: CartPole, Acrobot) "no states" programs train on
the "states" DQN, which saves a compilation for a gain of a few microseconds per update.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax.numpy as jnp
import numpy as np

from evolve.errors import OptionError
from evolve.harness import Harness, ReferenceNormalizer, program_rows
from evolve.interpreter import enable_compilation_cache
from evolve.program import Program
from evolve.space import Evaluation, Evaluator

from evolve.search_spaces import rl_envs
from evolve.search_spaces.rl_dqn import Q_LIMIT, DQNConfig, dqn_task

#: the least normalized return DQN must reach on an environment for it to serve as the unit
MIN_REFERENCE = 0.02


@dataclasses.dataclass(frozen=True)
class EnvResult:
    """One environment's runs, over the seeds: mean return, normalized score, and why it failed (None
    when it did not)."""

    mean_return: float
    normalized: float
    error: str | None


#: below this many state numbers per action, programs without state ops train on the "states" DQN
NARROW_STATES = 4


class EnvironmentScorer:
    """One environment: its DQN task compiled once per loss form (a harness of one task each, built
    on the first program of that form), DQN's reference run, and the formula of the module docstring.

    make_loss_of(form) gives the `make_loss` of a form of rl_loss_fn.LOSS_FORMS; form_of(arrays)
    the form a lowered program needs."""

    def __init__(self, name: str, steps: int, seeds: int, make_loss_of, form_of, reference: Any):
        self.env = rl_envs.make(name)
        self.steps = steps
        self.seeds = seeds
        self._make_loss_of = make_loss_of
        self._form_of = form_of
        self.harnesses: dict[str, Harness] = {}
        self.normalizer = ReferenceNormalizer(self.harness_for(reference), reference, self.summarize, relative_score, self._check_dqn)

    def form(self, program: Any) -> str:
        """The loss form `program` (arrays) trains with here."""
        form = self._form_of(program)
        if form == "no states" and self.env.obs_dim < NARROW_STATES * self.env.num_actions:
            return "states"
        return form

    def harness_for(self, program: Any) -> Harness:
        """The compiled DQN that trains `program` (arrays)."""
        form = self.form(program)
        if form not in self.harnesses:
            config = DQNConfig(steps=self.steps)
            task = dqn_task(self.env, config, self._make_loss_of(form))
            self.harnesses[form] = Harness([task], jnp.asarray([config.learning_rate], jnp.float32), range(self.seeds))
        return self.harnesses[form]

    def run(self, program: Any) -> dict[str, np.ndarray]:
        """The outcome of training with `program` (arrays), leaves [1 learning rate, S seeds]."""
        return self.harness_for(program).run(program)[0]

    @property
    def name(self) -> str:
        return self.env.spec.name

    def summarize(self, outcome: dict[str, np.ndarray]) -> EnvResult:
        """Outcome leaves [1 learning rate, S seeds] -> EnvResult."""
        returns = np.asarray(outcome["mean_return"][0], np.float64)
        normalized = [0.0 if np.isnan(r) else self.env.spec.normalize(float(r)) for r in returns]
        return EnvResult(float(np.nanmean(returns)) if np.isfinite(returns).any() else float("nan"), float(np.mean(normalized)), self._error(outcome))

    def _error(self, outcome: dict[str, np.ndarray]) -> str | None:
        if not np.all(outcome["finite"] == 1):
            return f"non-finite loss or gradient while training on {self.name}"
        q = float(np.max(outcome["max_abs_q"]))
        if not q <= Q_LIMIT:
            return f"Q diverged on {self.name}: |Q| reached {q:.3g} (limit {Q_LIMIT:g})"
        if np.all(outcome["max_grad_norm"] == 0):
            return f"no gradient reaches the online network: zero on every update on {self.name}"
        return None

    def _check_dqn(self, reference: list[EnvResult]) -> None:
        (dqn,) = reference
        if dqn.error or not dqn.normalized >= MIN_REFERENCE:
            raise OptionError(f"DQN does not learn {self.name} in {self.steps} steps (normalized return {dqn.normalized:.3f},"
                              f" {dqn.error or 'no failure'}); it cannot be the unit of fitness, raise the steps")

    def score(self, program: Any) -> tuple[EnvResult, float]:
        """As self.normalizer.score, on whichever compiled DQN trains `program`."""
        result = self.summarize(self.run(program))
        return result, relative_score(result, self.normalizer.reference[0])


def relative_score(result: EnvResult, dqn: EnvResult) -> float:
    """normalized / DQN's normalized; NaN when the run failed."""
    return float("nan") if result.error else result.normalized / dqn.normalized


class RLLossEvaluator(Evaluator):
    """Trains each candidate's DQN on the suite of `space.config` (an rl_losses.RLConfig: the hurdle
    first on the training suite) and scores it as the module docstring says."""

    def __init__(self, space):
        from evolve.search_spaces import rl_loss_fn

        enable_compilation_cache()
        self.config = space.config
        self._grammar = space.vocabulary
        self.arrays = rl_loss_fn.LossArrays(self._grammar)
        dqn = self.lower([space.known_loss("dqn")])[0]
        self.scorers = [
            EnvironmentScorer(name, self.config.steps_for(name), self.config.seeds, self.make_loss_of, self.arrays.form, dqn)
            for name in self.config.suite_envs
        ]

    def make_loss_of(self, form: str):
        """The `make_loss` (q_apply -> loss) of one of rl_loss_fn.LOSS_FORMS."""
        from evolve.search_spaces import rl_loss_fn

        return rl_loss_fn.make_loss_of(self._grammar, form)

    @property
    def has_hurdle(self) -> bool:
        return self.config.suite == "train"

    def lower(self, programs: Sequence[Program]) -> list[Any]:
        """Programs as the arrays the compiled training takes (rl_loss_fn.LossArrays)."""
        return program_rows(self.arrays.lower(programs))

    def evaluate(self, programs: Sequence[Program]) -> list[Evaluation]:
        return [self._evaluate(row) for row in self.lower(programs)]

    def _evaluate(self, program: Any) -> Evaluation:
        metrics: dict[str, Any] = {}
        total = 0.0
        for index, scorer in enumerate(self.scorers):
            result, score = scorer.score(program)
            metrics.update(_metrics(scorer.name, result, score))
            if result.error:
                return Evaluation.failure(result.error, **metrics)
            total += score
            if index == 0 and self.has_hurdle:
                metrics["hurdle_passed"] = bool(score >= self.config.hurdle_fraction)
                if not metrics["hurdle_passed"]:
                    break
        return Evaluation(total / len(self.scorers), metrics)


def _metrics(name: str, result: EnvResult, score: float) -> dict[str, float | None]:
    def finite(value: float) -> float | None:
        return value if np.isfinite(value) else None

    return {f"return/{name}": finite(result.mean_return), f"normalized/{name}": result.normalized, f"score/{name}": finite(score)}
