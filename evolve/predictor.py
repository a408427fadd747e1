"""The Predictor contract: a learned judge of which of two programs is better.

Constructed as `cls(space, **options)`. It learns online from evaluated individuals (`observe`),
answers batched pairwise questions (`compare`), reports what it measured (`metrics`), and serializes
its whole state (parameters, optimizer state, replay buffer) to bytes so a resumed run continues with
the same predictor.
"""

from __future__ import annotations

import abc
from typing import Any, Sequence

import numpy as np

from evolve.errors import PluginError
from evolve.population import Individual
from evolve.program import Program


class Predictor(abc.ABC):
    @abc.abstractmethod
    def observe(self, individuals: Sequence[Individual]) -> None:
        """Add newly evaluated individuals to the replay buffer (and train when due)."""

    @abc.abstractmethod
    def compare(self, a: Sequence[Program], b: Sequence[Program]) -> np.ndarray:
        """P(a[i] is better than b[i]) for each i, as a float array, in one batched call: one
        probability in [0, 1] per pair (`checked_comparison` holds a predictor to it)."""

    @property
    def ready(self) -> bool:
        """False during warm-up, when its answers should not be trusted yet."""
        return True

    def hold_training(self, held: bool) -> None:
        """While held, training calls that fall due are skipped (a strategy whose predictor costs
        more than its bound allows); the default trains as always."""

    def close(self) -> None:
        """The run is over: finish or drop work still running (a training thread)."""

    def metrics(self) -> dict[str, Any]:
        """What to record about the predictor (training loss, seconds spent, buffer size...)."""
        return {}

    def state(self) -> bytes:
        """Everything needed to continue exactly where it is, as bytes (the engine stores it every
        CHECKPOINT_EVERY recorded individuals; anything else stops the run with a PluginError)."""
        return b""

    def restore(self, state: bytes) -> None:
        """Load what `state()` returned."""


def checked_comparison(predictor: Predictor, answer: Any, pairs: int) -> np.ndarray:
    """`answer`, what `predictor.compare` returned for `pairs` pairs, as a float array; a predictor
    that broke its contract (another length, NaN, a value outside [0, 1], not numbers) is a
    PluginError naming it. Guided strategies ask through this, so such a predictor stops the run
    with one line (resumable, nothing lost) instead of steering it with numbers that mean nothing."""
    name = f"predictor {type(predictor).__name__}"
    try:
        p = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        raise PluginError(f"{name}: compare returned {type(answer).__name__}, not {pairs} probabilities") from None
    if p.shape != (pairs,):
        raise PluginError(f"{name}: compare returned shape {p.shape} for {pairs} pairs; it must give one P(a > b) per pair")
    wrong = np.flatnonzero(~(np.isfinite(p) & (p >= 0.0) & (p <= 1.0)))
    if wrong.size:
        k = int(wrong[0])
        raise PluginError(f"{name}: compare returned {float(p[k])!r} for pair {k}; each answer must be a probability in [0, 1]")
    return p

