"""Symbolic regression: the Nguyen data, the fitness, exact recovery, CSV data and the exports."""

import numpy as np
import pytest

from evolve.errors import OptionError
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.program import Node, Program

from evolve.search_spaces.nguyen import NGUYEN

SPACE = "symbolic-regression"


def make(**options):
    return PluginManager().make_space(SpaceSpec(SPACE, options))


def x3_x2_x():
    """x + x*x + x*x*x, i.e. Nguyen-1 exactly."""
    return Program(
        (Node("input"), Node("mul", (0, 0)), Node("add", (0, 1)), Node("mul", (1, 0)), Node("add", (2, 3))), (4,), SPACE
    )


def test_all_twelve_nguyen_problems_sample_their_ranges():
    assert sorted(NGUYEN, key=lambda n: int(n.split("-")[1])) == [f"nguyen-{i}" for i in range(1, 13)]
    for name, bench in NGUYEN.items():
        space = make(problem=name)
        assert space.data.x.shape == (bench.n_vars, 20)
        assert space.data.x.min() >= bench.low and space.data.x.max() <= bench.high
        assert len(space.vocabulary.inputs) == bench.n_vars
    assert (NGUYEN["nguyen-7"].low, NGUYEN["nguyen-7"].high) == (0, 2)
    assert (NGUYEN["nguyen-8"].low, NGUYEN["nguyen-8"].high) == (0, 4)


def test_exact_program_is_solved_symbolically(nguyen1):
    [ev] = nguyen1.evaluate([x3_x2_x()])
    assert ev.fitness == pytest.approx(1.0, abs=1e-6)
    assert ev.metrics["solved"] and ev.metrics["proof"] == "symbolic"


def test_close_but_wrong_program_is_not_solved(nguyen1):
    # x + x*x + sin(x*x*x): close on [-1, 1] but not the target
    p = Program(
        (Node("input"), Node("mul", (0, 0)), Node("add", (0, 1)), Node("mul", (1, 0)), Node("sin", (3,)), Node("add", (2, 4))),
        (5,),
        SPACE,
    )
    [ev] = nguyen1.evaluate([p])
    assert 0.5 < ev.fitness < 1.0 and not ev.metrics["solved"]


def test_sqrt_by_exp_log_recovers_nguyen8():
    space = make(problem="nguyen-8")
    # exp(log(x) * (x / (x + x))) == sqrt(x) on x > 0
    p = Program(
        (Node("input"), Node("log", (0,)), Node("add", (0, 0)), Node("div", (0, 2)), Node("mul", (1, 3)), Node("exp", (4,))),
        (5,),
        "symbolic-regression",
    )
    [ev] = space.evaluate([p])
    assert ev.metrics["solved"], ev


def test_exact_program_that_sympy_reads_as_zoo_is_solved_numerically(nguyen1):
    # x*x*x + x*x + x + (x - x) * (x / (x - x)): the protected division makes the last term 0, while
    # sympy reads it as 0 * zoo = nan; the program is still an exact recovery.
    p = Program(
        (Node("input"), Node("mul", (0, 0)), Node("mul", (1, 0)), Node("add", (2, 1)), Node("add", (3, 0)),
         Node("sub", (0, 0)), Node("div", (0, 5)), Node("mul", (5, 6)), Node("add", (4, 7))),
        (8,),
        SPACE,
    )
    [ev] = nguyen1.evaluate([p])
    assert ev.metrics["solved"] and ev.metrics["proof"] == "numeric"


def test_exact_program_that_sympy_cannot_print_is_solved_numerically(nguyen1):
    # x*x*x + x*x + x + sin(x / (x - x)) - sin(x / x): protected, the last two terms are sin(1) - sin(1);
    # sympy reads sin(x / (x - x)) as sin(zoo*x), which it cannot turn into NumPy code
    p = Program(
        (Node("input"), Node("mul", (0, 0)), Node("mul", (1, 0)), Node("add", (2, 1)), Node("add", (3, 0)),
         Node("sub", (0, 0)), Node("div", (0, 5)), Node("sin", (6,)), Node("add", (4, 7)),
         Node("div", (0, 0)), Node("sin", (9,)), Node("sub", (8, 10))),
        (11,),
        SPACE,
    )
    [ev] = nguyen1.evaluate([p])
    assert ev.metrics["solved"] and ev.metrics["proof"] == "numeric"


def test_fitness_is_one_over_one_plus_nrmse(nguyen1):
    x = Program((Node("input"),), (0,), SPACE)
    [ev] = nguyen1.evaluate([x])
    y, pred = nguyen1.data.y, nguyen1.data.x[0]
    nrmse = np.sqrt(np.mean((pred - y) ** 2)) / np.std(y)
    assert ev.fitness == pytest.approx(1 / (1 + nrmse), rel=1e-5)


def test_non_finite_output_is_a_failure_not_a_crash(nguyen1):
    # exp(exp(exp(exp(x)))) reaches exp(80) (the protection's cap) near x = 1; its square overflows float32
    nodes = [Node("input")] + [Node("exp", (i,)) for i in range(4)] + [Node("mul", (4, 4))]
    [ev] = nguyen1.evaluate([Program(tuple(nodes), (5,), SPACE)])
    assert ev.failed and "non-finite" in ev.error and ev.fitness == -np.inf


def test_batch_evaluation_matches_one_at_a_time(nguyen1):
    rng = np.random.default_rng(0)
    programs = [nguyen1.random_program(rng) for _ in range(37)]
    together = nguyen1.evaluate(programs)
    alone = [nguyen1.evaluate([p])[0] for p in programs]
    assert [e.fitness for e in together] == pytest.approx([e.fitness for e in alone], rel=1e-6)


def test_equal_behaviour_equal_fingerprint(nguyen1):
    a = x3_x2_x()
    # x*(x*(x + x/x)) + x computes the same function with another structure
    b = Program(
        (Node("input"), Node("div", (0, 0)), Node("add", (0, 1)), Node("mul", (0, 2)), Node("mul", (0, 3)), Node("add", (4, 0))),
        (5,),
        SPACE,
    )
    c = Program((Node("input"), Node("sin", (0,))), (1,), SPACE)
    fa, fb, fc = nguyen1.fingerprints([a, b, c])
    assert fa == fb != fc


def test_exports(nguyen1):
    p = x3_x2_x()
    assert nguyen1.export(p, "sympy") == "x1**3 + x1**2 + x1"
    assert nguyen1.export(p, "latex") == "x_{1}^{3} + x_{1}^{2} + x_{1}"
    assert Program.from_json(nguyen1.export(p, "json")) == p
    namespace = {}
    exec(nguyen1.export(p, "python"), namespace)  # the export is meant to be run by the user
    x = np.linspace(-1, 1, 7)
    np.testing.assert_allclose(namespace["program"](x), x**3 + x**2 + x)
    with pytest.raises(OptionError, match="cannot export 'optax'"):
        nguyen1.check_export_format("optax")


def test_python_export_keeps_protection(nguyen1):
    p = Program((Node("input"), Node("sub", (0, 0)), Node("div", (0, 1)), Node("log", (1,)), Node("add", (2, 3))), (4,), SPACE)
    namespace = {}
    exec(nguyen1.export(p, "python"), namespace)
    x = np.linspace(-1, 1, 5)
    got = namespace["program"](x)
    want = nguyen1.predictions([p])[0, :20]  # training points
    np.testing.assert_allclose(namespace["program"](nguyen1.data.x[0]), want, rtol=1e-5)
    assert np.all(np.isfinite(got))


def test_csv_data(tmp_path):
    path = tmp_path / "data.csv"
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, 30), rng.uniform(-1, 1, 30)
    rows = ["a,b,y"] + [f"{u},{v},{u * v + u}" for u, v in zip(a, b)]
    path.write_text("\n".join(rows) + "\n")
    space = make(problem=str(path), target="y")
    assert [i.name for i in space.vocabulary.inputs] == ["a", "b"]
    assert space.vocabulary.const_type == "real"
    p = Program((Node("input"), Node("input"), Node("mul", (0, 1)), Node("add", (2, 0))), (3,), SPACE)
    [ev] = space.evaluate([p])
    assert ev.fitness == pytest.approx(1.0, abs=1e-5) and "solved" not in ev.metrics
    assert space.describe(p) == "a*b + a"


def test_a_run_started_from_python_keeps_its_csv_data(tmp_path):
    """start_run stores what options_to_store says (the data, not the file's path), for every client."""
    from evolve.engine import resume_run, start_run
    from evolve.store import RunConfig, Store

    path = tmp_path / "data.csv"
    path.write_text("a,y\n" + "".join(f"{u},{2 * u + 1}\n" for u in np.linspace(-1, 1, 20)))
    store = Store(str(tmp_path / "e.db"))
    start_run(store, RunConfig(SPACE, {"problem": str(path), "target": "y"}, budget=10, workers=1)).execute()
    assert store.run(1).config.space_options["data"]["columns"]
    path.unlink()  # the run no longer needs the file
    store.set_status(1, "interrupted", "interrupted")
    assert resume_run(store, 1).execute() == "budget"


@pytest.mark.parametrize(
    "content, options, message",
    [
        (None, {}, "no such data file"),
        ("a,y\n1,2\n", {}, "at least two data rows"),
        ("a,y\n1,2\n3,x\n", {}, "every value must be a number"),
        ("a,y\n1,2\n3,4\n", {"target": "z"}, "no column 'z'"),
        ("a b,y\n1,2\n3,4\n", {}, "must be an identifier"),
    ],
)
def test_bad_csv_is_one_clear_error(tmp_path, content, options, message):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(OptionError, match=message):
        make(problem=str(path), **options)


def test_unknown_problem():
    with pytest.raises(OptionError, match="unknown problem 'nguyen-13'"):
        make(problem="nguyen-13")
