"""The discriminator: encoding, antisymmetry, bounded compilation, learning, checkpoints."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from evolve.discriminator import model
from evolve.discriminator.encoding import INFERENCE_SHAPES, SMALLEST_BIN, GraphEncoder, first_fit, inference_chunks, pad_count
from evolve.discriminator.online import OnlineDiscriminator
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.population import Individual
from evolve.program import Node, Program
from evolve.space import Evaluation


@pytest.fixture(scope="module")
def space():
    return PluginManager().make_space(SpaceSpec("symbolic-regression", {"problem": "nguyen-9"}))


def programs(space, n: int, seed: int = 0) -> list[Program]:
    """n distinct programs of varied size (random programs, mutated a few times)."""
    rng = np.random.default_rng(seed)
    out: dict[str, Program] = {}
    while len(out) < n:
        p = space.random_program(rng)
        for _ in range(int(rng.integers(0, 6))):
            p = space.mutate(p, rng)
        out.setdefault(p.digest, p)
    return list(out.values())


def individuals(progs, fitness) -> list[Individual]:
    return [Individual(i + 1, p, Evaluation(float(fitness(p)))) for i, p in enumerate(progs)]


def test_argument_order_changes_the_encoding(space):
    encoder = GraphEncoder(space.vocabulary)
    a_minus_b = Program((Node("input"), Node("input"), Node("sub", (0, 1))), (2,), space.name)
    b_minus_a = Program((Node("input"), Node("input"), Node("sub", (1, 0))), (2,), space.name)
    ea, eb = encoder.encode(a_minus_b), encoder.encode(b_minus_a)
    as_set = lambda e: sorted(zip(e.senders.tolist(), e.receivers.tolist(), e.edge_types.tolist()))  # noqa: E731
    assert as_set(ea) != as_set(eb)
    assert np.array_equal(ea.nodes, eb.nodes)  # only the edges tell them apart


def test_pair_head_is_antisymmetric(space):
    predictor = OnlineDiscriminator(space, warmup=0)
    progs = programs(space, 40)
    a, b = progs[:20], progs[20:]
    p_ab, p_ba = predictor.compare(a, b), predictor.compare(b, a)
    np.testing.assert_allclose(p_ab, 1.0 - p_ba, atol=1e-6)
    np.testing.assert_allclose(predictor.compare(a, a), 0.5, atol=1e-6)


def test_inference_compiles_a_few_shapes_whatever_the_batch_and_answers_as_pairs_alone(space):
    """Batches of 1 to 400 pairs are scored in the shapes of INFERENCE_SHAPES (padded up, or split in
    chunks of the largest): at most one compilation per shape and bin size, however many calls, and
    each pair gets the probability it gets scored alone, up to float rounding."""
    predictor = OnlineDiscriminator(space, warmup=0)
    progs = programs(space, 500, seed=1)
    sizes = {pad_count(len(p.pruned().nodes), SMALLEST_BIN) for p in progs}
    rng = np.random.default_rng(0)
    before = model.trace_count()
    for k in [1, 5, 30, 31, 120, 400, *rng.integers(1, 300, size=10)]:
        pick = rng.choice(len(progs), size=2 * k)
        a, b = [progs[i] for i in pick[:k]], [progs[i] for i in pick[k:]]
        together = predictor.compare(a, b)
        for i in range(0, k, max(1, k // 4)):
            np.testing.assert_allclose(together[i], predictor.compare([a[i]], [b[i]])[0], atol=1e-5)
    assert model.trace_count() - before <= len(INFERENCE_SHAPES) * len(sizes)


def test_inference_chunks_hold_their_shape():
    """Each chunk has at most its shape's graph slots of pairs and of programs, packed by first fit
    into its bins; together the chunks cover every pair in order; a batch that fits one shape is one
    chunk of the smallest that holds it."""
    rng = np.random.default_rng(3)
    for _ in range(30):
        counts = rng.integers(1, 17, size=int(rng.integers(1, 600))).tolist()
        n = len(counts) + int(rng.integers(0, 300))  # every program in some pair, as compare's are
        ia, ib = rng.permutation(np.resize(np.arange(len(counts)), n)).tolist(), rng.integers(0, len(counts), size=n).tolist()
        chunks = inference_chunks(ia, ib, counts, 16)
        assert [c.start for c in chunks] == [0] + [c.stop for c in chunks[:-1]] and chunks[-1].stop == n
        for c in chunks:
            members = set(c.members)
            assert {*ia[c.start : c.stop], *ib[c.start : c.stop]} == members and len(members) == len(c.members)
            assert (c.slots, c.bins) in INFERENCE_SHAPES and c.stop - c.start <= c.slots and len(members) <= c.slots
            assert c.placed == first_fit([counts[g] for g in c.members], 16) and max(c.placed[0]) < c.bins
        if len(chunks) > 1:
            assert all((c.slots, c.bins) == INFERENCE_SHAPES[-1] for c in chunks)
            assert sum(c.stop - c.start for c in chunks) / len(chunks) > 50  # chunks are filled, not pair by pair
        else:
            needed = max(first_fit(counts, 16)[0]) + 1
            smaller = [s for s in INFERENCE_SHAPES if s[1] < chunks[0].bins]
            assert all(max(n, len(counts)) > slots or needed > bins for slots, bins in smaller)


def test_packed_graphs_embed_as_graphs_alone(space):
    """Packing many graphs into bins changes nothing: each graph's embedding is the one it gets alone."""
    predictor = OnlineDiscriminator(space, warmup=0)
    progs = programs(space, 60, seed=4)
    trainer = predictor.trainer
    together = trainer.model.apply(trainer.params, predictor.encoder.batch(progs), method=model.Discriminator.embed)
    assert predictor.encoder.batch(progs).nodes.shape[0] < len(progs)  # several graphs share a bin
    for k in (0, 17, 59):
        alone = trainer.model.apply(trainer.params, predictor.encoder.batch([progs[k]]), method=model.Discriminator.embed)
        np.testing.assert_allclose(together[k], alone[0], atol=1e-5)


def test_learns_a_known_function_of_the_graph(space):
    """Fitness = how many sin nodes a program has; pairs of unseen programs are judged >= 90% right."""
    count_sin = lambda p: sum(n.op == "sin" for n in p.pruned().nodes)  # noqa: E731
    progs = programs(space, 700, seed=2)
    train, test = progs[:400], progs[400:]
    predictor = OnlineDiscriminator(space, warmup=len(train), warmup_steps=250)
    predictor.observe(individuals(train, count_sin))
    a, b = test[0::2], test[1::2]
    fa, fb = np.array([count_sin(p) for p in a]), np.array([count_sin(p) for p in b])
    differ = fa != fb
    p = predictor.compare(a, b)
    accuracy = np.mean((p[differ] > 0.5) == (fa[differ] > fb[differ]))
    assert differ.sum() >= 50
    assert accuracy >= 0.9, accuracy


def test_checkpoint_restores_the_same_predictions_and_training(space):
    progs = programs(space, 160, seed=3)
    fitness = lambda p: len(p.nodes)  # noqa: E731
    inds = individuals(progs, fitness)
    first = OnlineDiscriminator(space, warmup=40, warmup_steps=5, train_every=4, steps=1, seed=7)
    first.observe(inds[:100])
    second = OnlineDiscriminator(space, warmup=40, warmup_steps=5, train_every=4, steps=1, seed=7)
    second.restore(first.state())
    a, b = progs[100:130], progs[130:160]
    np.testing.assert_array_equal(first.compare(a, b), second.compare(a, b))
    # shown the same later individuals, in different batches, both train to the same state
    first.observe(inds[100:])
    for k in range(100, 160, 7):
        second.observe(inds[k : k + 7])
    np.testing.assert_allclose(first.compare(a, b), second.compare(a, b), atol=1e-6)
    assert first.metrics()["train_steps"] == second.metrics()["train_steps"]


def test_failed_evaluations_are_the_worst(space):
    predictor = OnlineDiscriminator(space, warmup=0)
    predictor.observe([Individual(1, programs(space, 1)[0], Evaluation.failure("NaN"))])
    assert predictor.buffer.fitness[0] < -1e29


def test_background_training_never_holds_up_the_caller(space):
    """observe returns while the training call it started runs; compare answers meanwhile with the
    parameters it had; settle waits for the call, and then the predictor is trained."""
    progs = programs(space, 120, seed=5)
    predictor = OnlineDiscriminator(space, width=16, heads=2, warmup=100, warmup_steps=300, background=True)
    before = predictor.compare(progs[:10], progs[10:20])
    predictor.observe(individuals(progs[:100], lambda p: len(p.nodes)))
    assert predictor.train_steps == 0 and not predictor.ready  # 300 steps are still running
    np.testing.assert_array_equal(predictor.compare(progs[:10], progs[10:20]), before)
    predictor.settle()
    assert predictor.train_steps == 300 and predictor.ready
    metrics = predictor.metrics()
    assert metrics["background_training"] and metrics["train_wait_seconds"] == 0.0 < metrics["train_seconds"]
    assert not np.array_equal(predictor.compare(progs[:10], progs[10:20]), before)


def test_background_training_drops_what_it_cannot_keep_up_with(space):
    """Calls due while one runs and one waits are dropped and counted; a checkpoint taken meanwhile
    keeps the calls still due, and a predictor restored from it runs them."""
    progs = programs(space, 160, seed=6)
    options = dict(width=16, heads=2, warmup=20, warmup_steps=200, train_every=1, steps=5, background=True)
    predictor = OnlineDiscriminator(space, **options)
    predictor.observe(individuals(progs, lambda p: len(p.nodes)))  # 1 call of 200 + 140 calls of 5 steps
    saved = predictor.state()
    predictor.settle()
    assert predictor.skipped_steps > 0
    assert predictor.train_steps + predictor.skipped_steps == 200 + 140 * 5
    restored = OnlineDiscriminator(space, **options)
    restored.restore(saved)
    restored.settle()
    assert restored.seen == 160 and restored.train_steps == predictor.train_steps


def test_background_predictor_compiles_inference_before_it_is_ready(space):
    """The first training call in the background also compiles the shapes inference runs in, so a
    proposal never waits for a compilation, whatever the size of its batch."""
    progs = programs(space, 240, seed=7)
    small = [p for p in progs if len(p.pruned().nodes) <= SMALLEST_BIN]
    predictor = OnlineDiscriminator(space, width=16, heads=2, warmup=100, warmup_steps=5, background=True)
    predictor.observe(individuals(progs[:100], lambda p: len(p.nodes)))
    predictor.settle()
    assert predictor.ready
    before = model.trace_count()
    for k in (3, 9, 20, 70):
        predictor.compare(small[:k], small[-k:])
    assert model.trace_count() == before  # nothing compiled on the caller's path


def test_held_training_skips_the_calls_due_and_close_waits_for_the_running_one(space):
    progs = programs(space, 80, seed=8)
    predictor = OnlineDiscriminator(space, width=16, heads=2, warmup=20, warmup_steps=50, train_every=2, steps=3,
                                    background=True)
    predictor.observe(individuals(progs[:40], lambda p: len(p.nodes)))
    predictor.settle()
    trained = predictor.train_steps
    predictor.hold_training(True)
    predictor.observe(individuals(progs[40:60], lambda p: len(p.nodes)))
    predictor.settle()
    assert predictor.train_steps == trained and predictor.skipped_steps >= 30
    predictor.hold_training(False)
    predictor.observe(individuals(progs[60:], lambda p: len(p.nodes)))
    predictor.close()
    assert predictor._worker is None and predictor.train_steps > trained


def test_gaps_below_the_spaces_fitness_resolution_are_ties_unless_the_run_says_otherwise(space):
    coarse = copy.copy(space)
    coarse.fitness_resolution = 0.05
    assert OnlineDiscriminator(coarse, width=16, heads=2).trainer.options.tie_tolerance == 0.05
    assert OnlineDiscriminator(coarse, width=16, heads=2, tie_tolerance=0.0).trainer.options.tie_tolerance == 0.0
    assert OnlineDiscriminator(space, width=16, heads=2).trainer.options.tie_tolerance == 1e-6
    with pytest.raises(ValueError, match="tie_tolerance must be at least 0"):
        OnlineDiscriminator(space, width=16, heads=2, tie_tolerance=-1.0)
