"""What bounds the discriminator's compiled code: one training-scan length, batches that never shrink."""

from __future__ import annotations

import numpy as np
import pytest

from evolve.discriminator import model
from evolve.discriminator.online import OnlineDiscriminator
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.population import Individual
from evolve.program import Node, Program
from evolve.space import Evaluation

SMALL = dict(width=16, depth=1, heads=2, batch_programs=8, warmup=40, train_every=10_000)


@pytest.fixture(scope="module")
def space():
    return PluginManager().make_space(SpaceSpec("symbolic-regression", {"problem": "nguyen-9"}))


def grown(space, n: int, mutations: int, seed: int) -> list[Program]:
    """n programs, each a random one mutated `mutations` times (more mutations: larger programs)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        p = space.random_program(rng)
        for _ in range(mutations):
            p = space.mutate(p, rng)
        out.append(p)
    return out


def long_chains(space, n: int) -> list[Program]:
    """n programs of 17 to 24 live nodes (a chain of unary ops on the input): bins of 32 node slots."""
    rng = np.random.default_rng(1)
    out = []
    for _ in range(n):
        ops = rng.choice(["sin", "cos", "exp", "log"], size=int(rng.integers(16, 24)))
        nodes = (Node("input"), *(Node(str(op), (k,)) for k, op in enumerate(ops)))
        out.append(Program(nodes, (len(nodes) - 1,), space.name))
    return out


def feed(predictor: OnlineDiscriminator, progs: list[Program], first_id: int = 1) -> None:
    predictor.observe([Individual(first_id + i, p, Evaluation(float(len(p.pruned().nodes)))) for i, p in enumerate(progs)])


@pytest.mark.slow
def test_a_long_training_call_is_scans_of_the_regular_length_and_trains_the_same(space):
    """The warm-up's 20 steps run as 3 compiled calls of 8 steps (the last 4 change nothing): the
    parameters are those of one 20-step scan, and only one scan length is compiled."""
    progs = grown(space, 40, 3, seed=0)
    in_scans = OnlineDiscriminator(space, warmup_steps=20, steps=8, **SMALL)
    before = model.trace_count()
    feed(in_scans, progs)
    assert in_scans.train_steps == 20
    assert model.trace_count() - before == 1
    at_once = OnlineDiscriminator(space, warmup_steps=20, steps=20, **SMALL)
    feed(at_once, progs)
    for a, b in zip(*(jax_leaves(p.trainer.params) for p in (in_scans, at_once))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert in_scans.last_loss == pytest.approx(at_once.last_loss, rel=1e-5)


def test_training_batches_never_shrink_and_a_checkpoint_keeps_their_layout(space):
    """After large programs, small ones train in the layout of the large (no compilation), though
    alone they would take a smaller one, and a restored predictor goes on in it."""
    options = dict(SMALL, warmup_steps=4, steps=4, train_every=40, buffer_size=40)
    predictor = OnlineDiscriminator(space, **options)
    feed(predictor, long_chains(space, 40))
    large = predictor.trainer.layout
    small = grown(space, 200, 0, seed=2)
    alone = predictor.encoder.pack([predictor.encoder.encode_many(small[:8])], 8).nodes.shape[1:3]
    assert alone[0] * alone[1] < large[0] * large[1]
    before = model.trace_count()
    feed(predictor, small, first_id=100)  # the buffer then holds small programs only
    assert predictor.train_steps == 4 + 5 * 4
    assert predictor.trainer.layout == large
    assert model.trace_count() == before
    restored = OnlineDiscriminator(space, **options)
    restored.restore(predictor.state())
    assert restored.trainer.layout == large


def jax_leaves(tree):
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]
