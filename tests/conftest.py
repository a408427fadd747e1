"""Shared fixtures. Engineers append fixtures here; keep each one documented."""

import pytest

from evolve.plugin_manager import PluginManager, SpaceSpec


@pytest.fixture(scope="session")
def nguyen1():
    """The Nguyen-1 space, built once per session (its compiled evaluator is shared)."""
    return PluginManager().make_space(SpaceSpec("symbolic-regression", {"problem": "nguyen-1"}))


@pytest.fixture(scope="session")
def ray_cluster():
    """A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`: 2 + 1
    CPUs), started once per session; this process joins it. Stopped (only it) at the end."""
    from evolve.local_cluster import LocalCluster
    from evolve.ray_executor import connect

    with LocalCluster(head_cpus=2, node_cpus=(1,)) as cluster:
        connect(cluster.address)
        yield cluster
        import ray

        ray.shutdown()


def pytest_collection_modifyitems(items):
    """Fast tests first: the ones marked `slow` run last (in their usual order), so a broken fast
    test shows within minutes."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)
