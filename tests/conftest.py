"""Shared fixtures. Engineers append fixtures here; keep each one documented."""

import pytest

from evolve.plugin_manager import SpaceSpec, default_manager


@pytest.fixture(scope="session")
def nguyen1():
    """The Nguyen-1 space, built once per session (its compiled evaluator is shared)."""
    return default_manager().make_space(SpaceSpec("symbolic-regression", {"problem": "nguyen-1"}))
