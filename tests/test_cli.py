"""The `evolve` command: the user's path through a search, and one clear line for every mistake."""

import json

import pytest

from evolve.cli import main


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "cli.db")


def test_run_show_top_export(db, tmp_path, capsys):
    assert main(["run", "symbolic-regression", "--problem", "nguyen-1", "--budget", "3000", "--seed", "1",
                 "--stop-when-solved", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "run 1 finished (solved)" in out and "[solved]" in out

    assert main(["runs", "--db", db]) == 0
    assert "symbolic-regression" in capsys.readouterr().out

    assert main(["show", "1", "--db", db]) == 0
    shown = capsys.readouterr().out
    assert "best fitness so far:" in shown and "top programs:" in shown and "[solved]" in shown

    assert main(["top", "1", "-n", "3", "--db", db]) == 0
    best_id = int(capsys.readouterr().out.splitlines()[1].split()[0])

    program_file = tmp_path / "best.json"
    assert main(["export", "1", str(best_id), "--format", "json", "-o", str(program_file), "--db", db]) == 0
    assert main(["export", "1", str(best_id), "--format", "latex", "--db", db]) == 0
    assert "x_{1}" in capsys.readouterr().out

    # a discovered program is reusable: evaluate it on another problem
    assert main(["evaluate", "symbolic-regression", str(program_file), "--problem", "nguyen-2"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[0])
    assert result["error"] is None and result["fitness"] < 1.0


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nope"], "unknown search space 'nope'"),
        (["run", "symbolic-regression", "--strategy", "nope"], "unknown strategy 'nope'"),
        (["run", "symbolic-regression", "--problem", "nguyen-99"], "unknown problem 'nguyen-99'"),
        (["run", "symbolic-regression", "--strategy-opt", "population_size"], "--strategy-opt takes key=value"),
        (["run", "symbolic-regression", "--strategy-opt", "population_size=0"], "population_size must be between 1 and 1000000, got 0"),
        (["run", "symbolic-regression", "--budget", "0"], "budget must be at least 1"),
        (["run", "symbolic-regression", "--strategy-opt", "population_size=abc"], "option 'population_size' must be int, got 'abc'"),
        (["run", "symbolic-regression", "--budget", "many"], "invalid int value: 'many'"),
        (["show", "7"], "no store at"),
        (["export", "1", "1", "--format", "optax"], "no store at"),
    ],
)
def test_mistakes_are_one_line_and_nonzero(args, message, db, capsys):
    assert exit_code(args + ["--db", db]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_run_and_bad_format(db, capsys):
    main(["run", "symbolic-regression", "--budget", "50", "--db", db])
    capsys.readouterr()
    assert main(["show", "9", "--db", db]) == 2
    assert "no run 9" in capsys.readouterr().err
    assert main(["export", "1", "1", "--format", "optax", "--db", db]) == 2
    assert "cannot export 'optax'" in capsys.readouterr().err
    assert main(["export", "1", "99999", "--db", db]) == 2
    assert "run 1 has no individual 99999" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        ("{oops", "not valid JSON"),
        ('{"format": "evolve.program", "version": 1, "space": "symbolic-regression", "nodes": [{"op": "input"}, {"op": "tan", "inputs": [0]}], "outputs": [1]}',
         "node 1 (tan): unknown op"),
        ('{"format": "evolve.program", "version": 1, "space": "optimizers", "nodes": [], "outputs": []}', "a program of space 'optimizers'"),
    ],
)
def test_malformed_program_file(tmp_path, content, message, capsys):
    path = tmp_path / "p.json"
    path.write_text(content)
    assert main(["evaluate", "symbolic-regression", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and len(err.strip().splitlines()) == 1


def exit_code(args):
    """main's return value, or the code argparse exits with."""
    try:
        return main(args)
    except SystemExit as e:
        return e.code


def test_a_run_whose_engine_cannot_be_built_leaves_nothing_behind(db, capsys):
    assert main(["run", "symbolic-regression", "--executor-opt", "bogus=1", "--db", db]) == 2
    assert "executor 'serial' has no option 'bogus'" in capsys.readouterr().err
    main(["runs", "--db", db])
    assert "symbolic-regression" not in capsys.readouterr().out
