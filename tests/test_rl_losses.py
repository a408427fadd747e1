"""The rl-losses space's grammar (issue 10): the known losses as programs against hand-written
jax.numpy losses (values and gradients), one compilation for every program, the original's random
programs and mutation, the differentiability rule, behaviour fingerprints, the formula and the
exported JAX module against the interpreter. No training here: the DQN is rl_dqn's."""

import inspect
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from evolve.errors import OptionError, ProgramError
from evolve.program import Program
from evolve.search_spaces import rl_loss_fn, rl_programs
from evolve.search_spaces.rl_losses import RLLosses

OBS, ACTIONS, BATCH = 4, 3, 16


@pytest.fixture(scope="module")
def space():
    return RLLosses()


@pytest.fixture(scope="module")
def jitted(space):
    """jit(value_and_grad(make_loss)) over the online parameters, counting its traces."""
    traces = []
    loss = rl_loss_fn.make_loss(space.vocabulary, rl_loss_fn.mlp_apply)

    def counted(program, online, target, batch):
        traces.append(1)
        return loss(program, online, target, batch)

    return jax.jit(jax.value_and_grad(counted, argnums=1)), traces


@pytest.fixture(scope="module")
def jitted_network_outside(space):
    """jit(value_and_grad) of the loss the DQN trains most programs with: no network inside the
    interpreter (a `q_values` node reading a computed state gives NaN there)."""
    loss = rl_loss_fn.make_loss(space.vocabulary, rl_loss_fn.mlp_apply, q_of_computed_states=False)
    return jax.jit(jax.value_and_grad(loss, argnums=1))


def networks(seed):
    rng = np.random.default_rng(seed)
    return rl_loss_fn.random_mlp(rng, (OBS, 8, ACTIONS)), rl_loss_fn.random_mlp(rng, (OBS, 8, ACTIONS))


def transitions(seed):
    rng = np.random.default_rng(seed)
    return {
        "s_tm1": jnp.asarray(rng.normal(size=(BATCH, OBS)), jnp.float32),
        "a_tm1": jnp.asarray(rng.integers(0, ACTIONS, BATCH), jnp.int32),
        "r_t": jnp.asarray(rng.normal(size=BATCH), jnp.float32),
        "discount_t": jnp.asarray(0.99 * (rng.random(BATCH) > 0.1), jnp.float32),
        "s_t": jnp.asarray(rng.normal(size=(BATCH, OBS)), jnp.float32),
    }


def assert_trees_close(a, b, **tolerance):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tolerance)


@pytest.mark.parametrize("name", list(rl_programs.KNOWN))
def test_known_losses_are_programs_equal_to_hand_written_losses(space, jitted, jitted_network_outside, name):
    reference = jax.value_and_grad(rl_loss_fn.REFERENCE_LOSSES[name](rl_loss_fn.mlp_apply))
    program = space.known_loss(name)
    assert len(program.nodes) == space.vocabulary.max_nodes  # the search's length: unread random ops first
    space.validate(program)
    for run in (jitted[0], jitted_network_outside):
        for seed in range(2):
            online, target = networks(seed)
            batch = transitions(seed)
            value, grads = run(rl_loss_fn.lower(space, program), online, target, batch)
            want_value, want_grads = reference(online, target, batch)
            np.testing.assert_allclose(value, want_value, rtol=1e-5)
            assert_trees_close(grads, want_grads, rtol=1e-4, atol=1e-6)
            assert any(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(grads))


def test_one_compilation_serves_twenty_programs(space, jitted):
    run, traces = jitted
    rng = np.random.default_rng(3)
    programs = [space.random_program(rng) for _ in range(10)]
    programs += [space.mutate(p, rng) for p in programs]
    assert len({p.digest for p in programs}) == 20
    online, target = networks(0)
    batch = transitions(0)
    values = [float(run(rl_loss_fn.lower(space, p), online, target, batch)[0]) for p in programs]
    assert len(traces) == 1  # one trace for every program (and for the known losses' test before it)
    assert len({round(v, 4) for v in values if np.isfinite(v)}) >= 10  # the program is data, not a constant


def test_the_loss_with_the_network_outside_the_interpreter_is_the_same_loss(space, jitted, jitted_network_outside):
    run, _ = jitted
    arrays = rl_loss_fn.LossArrays(space.vocabulary)
    rng = np.random.default_rng(7)
    programs = [space.known_loss(n) for n in rl_programs.KNOWN] + [space.random_program(rng) for _ in range(5)]
    programs += [space.mutate(space.known_loss("dqn"), rng) for _ in range(25)]
    b = rl_programs._Builder()  # the network at a state the program computed: |s_tm1|
    q_abs = b.op("select", b.op("q_values", b.q_param, b.op("abs", b.s_tm1)), b.action)
    programs.append(b.program(b.op("l2_distance", q_abs, b.op("max_list", b.op("q_values", b.q_targ_param, b.s_t)))))
    online, target = networks(5)
    batch = transitions(5)
    inside = []
    for program in programs:
        row = rl_loss_fn.lower(space, program)
        value, grads = run(row, online, target, batch)
        outside_value, outside_grads = jitted_network_outside(row, online, target, batch)
        inside.append(arrays.applies_network_inside(row))
        if inside[-1]:
            assert np.isfinite(value) and np.isnan(outside_value), space.describe(program)
            continue
        np.testing.assert_array_equal(outside_value, value, err_msg=space.describe(program))
        assert_trees_close(outside_grads, grads, rtol=1e-6, atol=1e-7)
    assert inside[-1] and not any(inside[: len(rl_programs.KNOWN)])
    assert 1 < sum(inside) < len(programs) / 2  # the children of DQN that read a computed state's Q are the exception


def test_a_loss_without_state_ops_is_the_same_loss_on_placeholder_states(space):
    """`LossArrays.form` sends programs whose ops never touch a state to the narrow loss (states of
    width 1 in the interpreter): on 50-number observations it must be the same loss, and every
    program it sends elsewhere must read or make a state."""
    wide, actions, batch_size = 50, 3, 16
    rng = np.random.default_rng(11)
    online, target = rl_loss_fn.random_mlp(rng, (wide, 8, actions)), rl_loss_fn.random_mlp(rng, (wide, 8, actions))
    batch = {
        "s_tm1": jnp.asarray(rng.normal(size=(batch_size, wide)), jnp.float32),
        "a_tm1": jnp.asarray(rng.integers(0, actions, batch_size), jnp.int32),
        "r_t": jnp.asarray(rng.normal(size=batch_size), jnp.float32),
        "discount_t": jnp.full((batch_size,), 0.99, jnp.float32),
        "s_t": jnp.asarray(rng.normal(size=(batch_size, wide)), jnp.float32),
    }
    states = jax.jit(jax.value_and_grad(rl_loss_fn.make_loss(space.vocabulary, rl_loss_fn.mlp_apply, q_of_computed_states=False), argnums=1))
    narrow = jax.jit(jax.value_and_grad(rl_loss_fn.make_loss(space.vocabulary, rl_loss_fn.mlp_apply, q_of_computed_states=False, states=False), argnums=1))
    arrays = rl_loss_fn.LossArrays(space.vocabulary)
    programs = [space.known_loss(n) for n in rl_programs.KNOWN] + [space.random_program(rng) for _ in range(5)]
    programs += [space.mutate(space.known_loss("dqn"), rng) for _ in range(40)]
    b = rl_programs._Builder()  # a state op: <s_tm1, s_t> added to DQN's target
    y = b.op("add", b.op("dot", b.s_tm1, b.s_t), b.op("max_list", b.op("q_values", b.q_targ_param, b.s_t)))
    programs.append(b.program(b.op("l2_distance", b.op("select", b.op("q_values", b.q_param, b.s_tm1), b.action), y)))
    forms = []
    for program in programs:
        row = rl_loss_fn.lower(space, program)
        forms.append(arrays.form(row))
        value, grads = states(row, online, target, batch)
        narrow_value, narrow_grads = narrow(row, online, target, batch)
        if forms[-1] == "no states":
            np.testing.assert_allclose(narrow_value, value, rtol=1e-6, err_msg=space.describe(program))
            assert_trees_close(narrow_grads, grads, rtol=1e-5, atol=1e-7)
    assert forms[: len(rl_programs.KNOWN)] == ["no states"] * len(rl_programs.KNOWN)
    assert forms[-1] == "states"
    print({form: forms.count(form) for form in rl_loss_fn.LOSS_FORMS})
    assert forms.count("no states") >= 10 and "states" in forms[len(rl_programs.KNOWN):-1]
    with pytest.raises(ValueError, match="states=False needs"):
        rl_loss_fn.make_loss(space.vocabulary, rl_loss_fn.mlp_apply, states=False)


def call_exported(module, online, target, batch):
    """An exported module's `loss`, called in the rlax convention with the extras it asks for."""
    q = rl_loss_fn.mlp_apply
    extras = {
        "q_t_selector": q(online, batch["s_t"]), "q_tm1_target": q(target, batch["s_tm1"]),
        "s_tm1": batch["s_tm1"], "s_t": batch["s_t"],
        "q_fn": lambda s: q(online, s), "q_targ_fn": lambda s: q(target, s),
    }
    wanted = [p.name for p in inspect.signature(module["loss"]).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return module["loss"](q(online, batch["s_tm1"]), batch["a_tm1"], batch["r_t"], batch["discount_t"],
                          q(target, batch["s_t"]), **{k: extras[k] for k in wanted})


def test_the_exported_module_computes_the_interpreters_loss_and_gradient(space, jitted):
    rng = np.random.default_rng(4)
    programs = [space.known_loss(n) for n in rl_programs.KNOWN] + [space.random_program(rng) for _ in range(12)]
    # a network applied to a computed state, and the states themselves, need the extra arguments
    b = rl_programs._Builder()
    q_abs = b.op("select", b.op("q_values", b.q_param, b.op("abs", b.s_tm1)), b.action)
    shifted = b.op("q_values", b.q_targ_param, b.op("mul", b.reward, b.s_tm1))
    programs.append(b.program(b.op("add", b.op("l2_distance", q_abs, b.op("max_list", shifted)), b.op("l2_norm", b.s_t))))
    loss, _ = jitted
    online, target = networks(1)
    batch = transitions(1)
    for program in programs:
        space.validate(program)
        source = space.export(program, "jax")
        module: dict = {}
        exec(compile(source, "<exported>", "exec"), module)  # noqa: S102 - the test of an export is running it

        value, grads = jax.value_and_grad(lambda online: call_exported(module, online, target, batch))(online)
        want_value, want_grads = loss(rl_loss_fn.lower(space, program), online, target, batch)
        if not np.isfinite(want_value):
            assert not np.isfinite(value), space.describe(program)
            continue
        np.testing.assert_allclose(value, want_value, rtol=1e-4, err_msg=space.describe(program))
        assert_trees_close(grads, want_grads, rtol=1e-3, atol=1e-5)


def test_exported_signature_lists_exactly_what_the_program_reads(space):
    source = space.export(space.known_loss("dqn"), "jax")
    assert "def per_sample_loss(q_tm1, a_tm1, r_t, discount_t, q_t):" in source
    assert "import evolve" not in source and "from evolve" not in source
    double = space.export(space.known_loss("double_dqn"), "jax")
    assert "def loss(q_tm1, a_tm1, r_t, discount_t, q_t, *, q_t_selector):" in double


def test_random_programs_are_the_originals_bootstrapped_dqn(space):
    rng = np.random.default_rng(5)
    dqn = rl_programs.dqn()
    for _ in range(30):
        program = space.random_program(rng)
        space.validate(program)
        assert len(program.nodes) == space.vocabulary.max_nodes
        assert program.nodes[: len(dqn.nodes)] == dqn.nodes  # DQN's 7 ops first, not frozen
        assert program.outputs == (len(program.nodes) - 1,)
        for node in program.nodes[len(dqn.nodes):]:
            assert len(set(node.inputs)) == len(node.inputs)  # two distinct arguments, as the original


def test_mutation_redraws_one_node_and_keeps_what_is_read_typed(space):
    rng = np.random.default_rng(6)
    vocab = space.vocabulary
    sampler = rl_programs.OpSampler(vocab)
    parents = [space.random_program(rng) for _ in range(20)] + space.seed_programs(rng)
    for parent in parents:
        step = rl_programs.replace_node(parent, vocab, rng, sampler)
        changed = [i for i, (a, b) in enumerate(zip(parent.nodes, step.nodes)) if a != b]
        assert len(changed) <= 1 and len(step.nodes) == len(parent.nodes)
        for i in changed:
            read = i in parent.outputs or any(i in n.inputs for n in parent.nodes[i + 1:])
            if read:
                assert step.node_types(vocab)[i] == parent.node_types(vocab)[i]
        child = rl_programs.mutate(parent, vocab, rng, fresh_probability=0.0)
        space.validate(child)
        assert child.digest != parent.digest and len(child.nodes) == len(parent.nodes)
    fresh = rl_programs.mutate(parents[0], vocab, rng, fresh_probability=1.0)
    assert fresh.nodes[:15] == rl_programs.dqn().nodes and fresh.digest != parents[0].digest


def test_a_loss_the_online_network_cannot_move_is_invalid(space):
    b = rl_programs._Builder()
    target_only = b.program(b.op("max_list", b.op("q_values", b.q_targ_param, b.s_t)))
    with pytest.raises(ProgramError, match="does not depend on the online network"):
        space.validate(target_only)
    b = rl_programs._Builder()  # Q reaches the loss only through argmax: an integer, no gradient
    best = b.op("argmax", b.op("q_values", b.q_param, b.s_t))
    through_argmax = b.program(b.op("select", b.op("q_values", b.q_targ_param, b.s_t), best))
    with pytest.raises(ProgramError, match="differentiable path"):
        space.validate(through_argmax)
    wrong_type = Program(tuple(rl_programs.dqn().nodes[:9]), (8,), "rl-losses")  # the output is a Q-value list
    with pytest.raises(ProgramError, match="must be of type float"):
        space.validate(wrong_type)


def test_describe_writes_the_known_losses_as_formulas(space):
    assert space.describe(space.known_loss("dqn")) == "0.5·(Q(s,a) - (r + γ·max Q_targ(s',·)))²"
    assert space.describe(space.known_loss("double_dqn")) == "0.5·(Q(s,a) - (r + γ·Q_targ(s',argmax Q(s',·))))²"
    assert space.describe(space.known_loss("dqn_reg")) == "0.5·(Q(s,a) - (r + γ·max Q_targ(s',·)))² + 0.1·Q(s,a)"
    assert space.describe(space.known_loss("dqn_clipped")) == (
        "max(Q(s,a), h1 + (Q(s,a) - h1)²) + max(Q(s,a) - h1, γ·(max Q_targ(s',·))²), where h1 = r + γ·max Q_targ(s',·)"
    )
    assert space.export(space.known_loss("dqn"), "text").startswith("loss = 0.5·(Q(s,a)")


def test_fingerprints_recognise_one_loss_spelled_twice(space):
    dqn = space.known_loss("dqn")
    b = rl_programs._Builder()  # 0.5 (Y - Q(s,a))^2: the same loss, another digest
    q_sa, y, _ = b.dqn_target()
    swapped = b.program(b.op("l2_distance", y, q_sa))
    assert swapped.digest != dqn.digest
    others = [space.known_loss(n) for n in ("double_dqn", "dqn_reg", "dqn_clipped")]
    prints = space.fingerprints([dqn, rl_programs.dqn(), swapped, *others])
    assert prints[0] == prints[1] == prints[2]
    assert len(set(prints[2:])) == 4
    assert RLLosses().fingerprints([dqn]) == prints[:1]  # another instance, same fingerprint


def test_configuration_options_are_checked(space):
    assert space.config.name == "cheap" and space.config.suite_envs == ("CartPole-v1",)
    full = RLLosses(config="full", suite="heldout", seeds=3)
    assert full.config.seeds == 3 and full.config.suite_envs == full.config.heldout_envs
    assert full.config.steps_for("CartPole-v1") == 10_000 and full.config.steps_for("Breakout-MinAtar") == 20_000
    assert RLLosses(config="full").config.suite_envs == ("CartPole-v1", "Acrobot-v1")
    assert RLLosses(config="full", train_steps=700).config.steps_for("Acrobot-v1") == 700  # one budget for all
    assert RLLosses(seed_with="dqn").seed_programs(None) == [space.known_loss("dqn")]
    chosen = RLLosses(envs="Acrobot-v1, Catch-bsuite", heldout_envs=["Breakout-MinAtar"])
    assert chosen.config.suite_envs == ("CartPole-v1", "Acrobot-v1", "Catch-bsuite")
    assert RLLosses(suite="heldout", heldout_envs="MountainCar-v0").config.suite_envs == ("MountainCar-v0",)
    assert RLLosses(config="full", envs="").config.suite_envs == ("CartPole-v1",)  # the hurdle alone
    for options, message in [
        ({"envs": "Acrobot-v1,LunarLander-v2"}, "no return range for LunarLander-v2; known: CartPole-v1"),
        ({"envs": "Acrobot-v1,Acrobot-v1"}, "twice"),
        ({"envs": "CartPole-v1"}, "the hurdle"),
        ({"envs": 3}, "comma-separated or a list"),
        ({"heldout_envs": ""}, "at least one"),
        ({"config": "huge"}, "unknown configuration"),
        ({"suite": "test"}, "unknown suite"),
        ({"train_steps": 0}, "train_steps"),
        ({"seeds": True}, "seeds"),
        ({"extra_ops": 3}, "room for the known losses"),
        ({"fresh_probability": 1.5}, "fresh_probability"),
        ({"seed_with": "ppo"}, "seed_with"),
    ]:
        with pytest.raises(OptionError, match=message):
            RLLosses(**options)


def test_the_grammar_imports_no_jax():
    code = (
        "import sys, numpy as np\n"
        "from evolve.search_spaces.rl_losses import RLLosses\n"
        "s = RLLosses(config='full')\n"
        "p = s.mutate(s.random_program(np.random.default_rng(0)), np.random.default_rng(1))\n"
        "s.describe(p); s.export(p, 'jax'); s.export(p, 'text')\n"
        "assert 'jax' not in sys.modules, 'jax imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.slow  # trains with the real evaluator: about 35 s
def test_the_space_keeps_the_plugin_contract():
    pytest.importorskip("evolve.search_spaces.rl_evaluator", reason="the evaluator (rl_evaluator) is not there yet")
    from evolve.testing import check_search_space

    check_search_space(RLLosses, {"train_steps": 600, "seeds": 1}, programs=1)


@pytest.mark.slow  # compiles both of the evaluator's DQNs: 195 s wall measured on a loaded 2-core machine
def test_a_loss_applying_the_network_to_a_computed_state_trains_on_the_evaluators_second_dqn():
    pytest.importorskip("gymnax")
    space = RLLosses(train_steps=600, seeds=1)
    evaluator = space.build_evaluator()
    b = rl_programs._Builder()  # DQN with Q(|s|, a) for Q(s, a)
    q_abs = b.op("select", b.op("q_values", b.q_param, b.op("abs", b.s_tm1)), b.action)
    y = b.op("add", b.reward, b.op("dot", b.discount, b.op("max_list", b.op("q_values", b.q_targ_param, b.s_t))))
    computed = space.validate(b.program(b.op("l2_distance", q_abs, y)))
    results = evaluator.evaluate([computed, space.known_loss("dqn"), computed])
    assert not results[0].failed and np.isfinite(results[0].fitness)  # not the NaN of the network-free DQN
    assert results[2].fitness == results[0].fitness and results[1].fitness == 1.0
    (scorer,) = evaluator.scorers
    assert scorer.form(evaluator.lower([computed])[0]) == "network inside"
    assert {form: harness.traces for form, harness in scorer.harnesses.items()} == {"states": 1, "network inside": 1}


def test_the_cli_exports_a_stored_loss_as_jax_and_shows_it_as_a_formula(space, tmp_path, capsys):
    from evolve.cli import main
    from evolve.population import Individual
    from evolve.space import Evaluation
    from evolve.store import RunConfig, Store

    db = str(tmp_path / "rl.db")
    store = Store(db)
    run = store.create_run(RunConfig(space="rl-losses", space_options={"config": "cheap"}))
    store.record(run.id, [(Individual(1, space.known_loss("dqn_reg"), Evaluation(1.25)), 1, None)])
    store.close()
    assert main(["top", str(run.id), "--db", db]) == 0
    assert "0.5·(Q(s,a) - (r + γ·max Q_targ(s',·)))² + 0.1·Q(s,a)" in capsys.readouterr().out
    out = tmp_path / "dqn_reg.py"
    assert main(["export", str(run.id), "1", "--format", "jax", "-o", str(out), "--db", db]) == 0
    module: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), module)  # noqa: S102
    q_tm1 = jnp.asarray([[1.0, 2.0], [0.5, -1.0]])
    q_t = jnp.asarray([[3.0, 0.0], [1.0, 4.0]])
    value = module["loss"](q_tm1, jnp.asarray([1, 0]), jnp.asarray([1.0, 0.0]), jnp.asarray([0.9, 0.0]), q_t)
    delta = np.array([2.0 - (1.0 + 0.9 * 3.0), 0.5 - 0.0])
    np.testing.assert_allclose(value, np.mean(0.5 * delta**2 + 0.1 * np.array([2.0, 0.5])), rtol=1e-6)


def with_each_op(space):
    """For every op of the vocabulary (every overload), DQN's loss plus that op applied to DQN's
    values (and a softmax, an argmax, a constant), its result folded into the loss."""
    vocab = space.vocabulary
    to_float = {"float": None, "list": "max_list", "prob": "entropy", "state": "l2_norm", "action": None}
    programs = []
    for op in vocab.ops:
        b = rl_programs._Builder()
        q = b.op("q_values", b.q_param, b.s_tm1)
        q_sa, y, _ = b.dqn_target()
        loss = b.op("l2_distance", q_sa, y)
        for name, source in (("softmax", q), ("argmax", q), ("softmax", b.op("q_values", b.q_targ_param, b.s_t))):
            b.op(name, source)  # values of the types DQN lacks (prob, action) for the op to read
        types = b.program(loss).node_types(vocab)
        by_type = {}
        for i in reversed(range(len(types))):
            by_type.setdefault(types[i], []).append(i)
        args = [by_type[t.name][k % len(by_type[t.name])] for k, t in enumerate(op.input_types)]
        node = b.op(op.name, *args)
        out = op.output_type.name
        if out == "action":
            node = b.op("select", q, node)
        elif to_float[out]:
            node = b.op(to_float[out], node)
        programs.append(b.program(b.op("add", loss, node)))
    return programs


def test_every_op_is_described_and_exported_as_valid_python(space, jitted):
    run, _ = jitted
    online, target = networks(2)
    batch = transitions(2)
    seen = set()
    for program in with_each_op(space):
        space.validate(program)
        seen |= {node.op for node in program.pruned().nodes}
        assert space.describe(program)
        source = space.export(program, "jax")
        module: dict = {}
        exec(compile(source, "<exported>", "exec"), module)  # noqa: S102
        value = call_exported(module, online, target, batch)
        want, _ = run(rl_loss_fn.lower(space, program), online, target, batch)
        np.testing.assert_allclose(value, want, rtol=1e-4, err_msg=space.describe(program))
        assert space.export(program, "text").count("\n") == len(program.pruned().nodes) - 8 + 3
    assert seen == {"input", *space.vocabulary.op_names}


def numpy_mlp(params, x):
    for w, b in params[:-1]:
        x = np.maximum(x @ np.asarray(w, np.float64) + np.asarray(b, np.float64), 0)
    w, b = params[-1]
    return x @ np.asarray(w, np.float64) + np.asarray(b, np.float64)


def _lifted(fn):
    def lifted(x, y):
        x, y = (x[..., None] if x.ndim < y.ndim else x), (y[..., None] if y.ndim < x.ndim else y)
        return fn(x, y)
    return lifted


def _std(x, axis):
    return np.sqrt(np.mean((x - x.mean(axis=axis, keepdims=True)) ** 2, axis=axis, keepdims=True))


def _kl(p, q):
    p, q = np.clip(p, 1e-7, 1), np.clip(q, 1e-7, 1)
    return np.sum(p * np.log(p / q), axis=-1)


def _softmax(q):
    e = np.exp(q - q.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


#: the ops as brain_autorl's ops.py computes them, in NumPy (float64); "/state": the overload on states
NUMPY_OPS = {
    "select": lambda q, a: np.take_along_axis(q, a[:, None], axis=1)[:, 0],
    "argmax": lambda q: np.argmax(q, axis=-1), "max_list": lambda q: q.max(-1), "sum_list": lambda q: q.sum(-1),
    "mean_list": lambda q: q.mean(-1), "std_list": lambda q: _std(q, -1)[:, 0], "softmax": _softmax,
    "entropy": lambda p: np.sum(p * np.log(p + 1e-8), axis=-1), "kl_div": _kl, "mul_tenth": lambda x: 0.1 * x,
    "add": _lifted(np.add), "sub": _lifted(np.subtract), "mul": _lifted(np.multiply),
    "dot": np.multiply, "dot/state": lambda x, y: (x * y).sum(-1),
    "max": np.maximum, "min": np.minimum, "max_float": _lifted(np.maximum),
    "l2_distance": lambda x, y: 0.5 * (x - y) ** 2, "l2_distance/state": lambda x, y: 0.5 * ((x - y) ** 2).sum(-1),
    "l2_norm": lambda x: x**2, "l2_norm/state": lambda x: (x**2).sum(-1),
    "div": lambda x, y: x / (y + 1e-10), "log": lambda x: np.log(np.abs(x) + 1e-12),
    "exp": lambda x: np.clip(np.exp(x), -1e10, 1e10), "abs": np.abs,
    "mean_batch": lambda x: np.broadcast_to(x.mean(0, keepdims=True), x.shape),
    "std_batch": lambda x: np.broadcast_to(_std(x, 0), x.shape),
}


def numpy_loss(program, vocab, online, target, batch):
    """The program evaluated node by node in NumPy, per sample."""
    inputs = [0, batch["a_tm1"], batch["s_tm1"], 1, batch["s_t"], batch["r_t"], batch["discount_t"], np.zeros(BATCH)]
    types = program.node_types(vocab)
    values = []
    for i, node in enumerate(program.nodes):
        if node.op == "input":
            value = np.asarray(inputs[i], np.float64) if i not in (1, 0, 3) else np.asarray(inputs[i])
        elif node.op == "q_values":
            value = numpy_mlp(online if values[node.inputs[0]] == 0 else target, values[node.inputs[1]])
        elif node.op.startswith("const_"):
            value = np.full(BATCH, float(node.op[len("const_"):]))
        else:
            on_states = node.op in ("dot", "l2_distance", "l2_norm") and types[node.inputs[0]] == "state"
            value = NUMPY_OPS[node.op + ("/state" if on_states else "")](*(values[j] for j in node.inputs))
        values.append(value)
    return values[program.outputs[0]]


def test_every_op_computes_what_the_original_computes(space, jitted):
    run, _ = jitted
    online, target = networks(3)
    batch = {k: np.asarray(v) for k, v in transitions(3).items()}
    for program in with_each_op(space):
        with np.errstate(all="ignore"):  # entropy of a log-probability is NaN here as in the original
            want = numpy_loss(program.pruned(), space.vocabulary, online, target, batch).mean()
        got, _ = run(rl_loss_fn.lower(space, program), online, target, {k: jnp.asarray(v) for k, v in batch.items()})
        np.testing.assert_allclose(got, want, rtol=1e-4, err_msg=space.describe(program))
