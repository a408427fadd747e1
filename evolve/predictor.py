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

from evolve.population import Individual
from evolve.program import Program


class Predictor(abc.ABC):
    @abc.abstractmethod
    def observe(self, individuals: Sequence[Individual]) -> None:
        """Add newly evaluated individuals to the replay buffer (and train when due)."""

    @abc.abstractmethod
    def compare(self, a: Sequence[Program], b: Sequence[Program]) -> np.ndarray:
        """P(a[i] is better than b[i]) for each i, as a float array, in one batched call."""

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
        """Everything needed to continue exactly where it is."""
        return b""

    def restore(self, state: bytes) -> None:
        """Load what `state()` returned."""
