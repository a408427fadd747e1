"""The trained evaluator of nas-cells: one compilation for every cell, and the flax export computes
exactly what the masked network computes for its cell."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evolve.search_spaces import nas_cells as nc
from evolve.search_spaces import nas_training as nt

from test_nas_hash import CHAIN_OF_3X3, INCEPTION_NOTEBOOK

C3, C1, MP = nc.AVAILABLE_OPS
CELLS = {
    "inception": INCEPTION_NOTEBOOK,
    "chain of 3x3": CHAIN_OF_3X3,
    "pool then skip": ([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", MP, "output"]),
    "input to output": ([[0, 1], [0, 0]], ["input", "output"]),
    "no input to output": ([[0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]], ["input", C1, MP, "output"]),
}


def exported_network(program, network):
    space = nc.NasCells(**network)
    namespace = {}
    exec(compile(space.export(program, "flax"), "<exported cell>", "exec"), namespace)  # our own generated source
    return namespace["Network"]()


def subset(tree, like):
    """The entries of `tree` at the paths of `like` (KeyError if one is missing)."""
    return {k: subset(tree[k], v) if isinstance(v, dict) else tree[k] for k, v in like.items()}


@pytest.mark.parametrize("name", list(CELLS))
def test_exported_flax_module_is_the_masked_network_for_its_cell(name):
    network = {"channels": 4, "stacks": 2, "cells_per_stack": 1}
    program = nc.from_spec(*CELLS[name])
    arrays = nt.cell_arrays(program)
    masked = nt.MaskedNetwork(nt.NetworkShape(**network))
    exported = exported_network(program, network)
    x = jax.random.normal(jax.random.key(1), (6, 8, 8, 1))
    full = masked.init(jax.random.key(0), x, arrays["adjacency"], arrays["ops"], train=False)
    mine = exported.init(jax.random.key(0), x, train=False)
    same = subset(full, mine)  # every exported parameter exists in the masked network, same shape
    assert jax.tree.map(jnp.shape, same) == jax.tree.map(jnp.shape, mine)
    count = sum(leaf.size for leaf in jax.tree.leaves(mine["params"]))
    assert count == nt.cell_parameter_count(full["params"], arrays)
    for train in (False, True):
        want = masked.apply(full, x, arrays["adjacency"], arrays["ops"], train=train, mutable=["batch_stats"] if train else False)
        got = exported.apply(same, x, train=train, mutable=["batch_stats"] if train else False)
        want, got = (want[0], got[0]) if train else (want, got)
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-6)


def test_cell_arrays_layout():
    arrays = nt.cell_arrays(nc.from_spec(*CELLS["pool then skip"]))
    adjacency, ops = arrays["adjacency"], arrays["ops"]
    assert adjacency[0, 1] == adjacency[0, 6] == adjacency[1, 6] == 1 and adjacency.sum() == 3
    assert ops[1].tolist() == [0, 0, 1] and ops.sum() == 1  # slots 2..5 empty: no op, no edge


def test_every_cell_trains_with_one_compilation():
    space = nc.NasCells(evaluator="trained", channels=4, stacks=1, steps=4, batch=16, seeds=2)
    programs = [nc.from_spec(*spelling) for spelling in CELLS.values()]
    evaluations = space.evaluate(programs)
    assert space.evaluator.compilations == 1
    for program, e in zip(programs, evaluations):
        assert e.error is None and 0.0 <= e.fitness <= 1.0
        assert e.fitness == e.metrics["validation_accuracy"] == pytest.approx(np.mean(e.metrics["validation_accuracy_per_seed"]))
        assert len(e.metrics["validation_accuracy_per_seed"]) == 2 and 0.0 <= e.metrics["test_accuracy"] <= 1.0
        assert e.metrics["module_hash"] == nc.module_hash(program) and e.metrics["training_seconds"] > 0
    params = [e.metrics["trainable_parameters"] for e in evaluations]
    assert params[1] > params[2] > params[3]  # five 3x3 convs; a maxpool with its projection; one projection
    again = space.evaluate(programs[:1])[0]
    assert again.metrics["validation_accuracy_per_seed"] == evaluations[0].metrics["validation_accuracy_per_seed"]
    assert space.evaluator.compilations == 1
