"""A CLI that explains itself: --version, every option documented with its default, a plugin's
options and problems, JSON for scripts, the problem shown when it was the default, plain words in
`evolve show`."""

import argparse
import json

import pytest

from evolve.cli import _parser, main
from evolve.version import DISTRIBUTION, version


def subcommands():
    parser = _parser()
    [sub] = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    return parser, sub.choices


def test_version(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.strip() == f"{DISTRIBUTION} {version()}"
    assert version() != "unknown"  # the test environment has evolve installed, under its distribution name


def test_every_option_has_help_and_shows_its_default():
    parser, commands = subcommands()
    for name, command in {"evolve": parser, **commands}.items():
        help_text = " ".join(command.format_help().split())
        for action in command._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            assert action.help, f"evolve {name}: {action.option_strings or action.dest} has no help"
            if action.default not in (None, False, argparse.SUPPRESS):
                assert f"(default: {action.default})" in help_text, f"evolve {name}: {action.dest} hides its default"
    run_help = " ".join(commands["run"].format_help().split())
    for shown in ("(default: regularized-evolution)", "(default: 1000)", "(default: 0)", "(default: 16)", "(default: serial)"):
        assert shown in run_help


def test_plugins_name_lists_options_with_type_default_and_doc(capsys):
    assert main(["plugins", "symbolic-regression"]) == 0
    out = capsys.readouterr().out
    problem = next(line for line in out.splitlines() if line.split()[:1] == ["problem"])
    assert problem.split()[1:3] == ["str", "'nguyen-1'"] and "Nguyen benchmark name" in problem
    assert any(line.split()[:3] == ["data_seed", "int", "0"] and "seeds the benchmark" in line for line in out.splitlines())
    assert "problems (--problem NAME):" in out
    assert any(line.split()[:2] == ["nguyen-7", "log(x1"] for line in out.splitlines())
    assert len([line for line in out.splitlines() if line.strip().startswith("nguyen-")]) == 12

    assert main(["plugins", "ray", "--json"]) == 0
    [ray] = json.loads(capsys.readouterr().out)
    options = {option["name"]: option for option in ray["options"]}
    assert ray["kind"] == "executor" and options["max_retries"]["default"] == 2 and options["max_retries"]["type"] == "int"
    assert "worker died" in options["max_retries"]["doc"] and options["workers"]["flag"] == "--workers"


def test_every_shipped_plugin_documents_every_option(capsys):
    assert main(["plugins", "--json"]) == 0
    plugins = json.loads(capsys.readouterr().out)["plugins"]
    for plugin in plugins:
        assert main(["plugins", plugin["name"], "--json"]) == 0
        [doc] = json.loads(capsys.readouterr().out)
        if doc.get("distribution", DISTRIBUTION) != DISTRIBUTION:
            continue  # a plugin installed from elsewhere is its author's to document
        for option in doc["options"]:
            assert option["doc"], f"{plugin['kind']} {plugin['name']}: option {option['name']} is undocumented"


def test_options_documented_together_each_get_the_entry():
    from evolve.plugin_docs import parameter_docs

    class Net:
        def __init__(self, width: int = 8, depth: int = 2, lr: float = 0.1):
            """width, depth: the network's shape. lr: the learning rate."""

    assert parameter_docs(Net) == {"width": "the network's shape.", "depth": "the network's shape.",
                                   "lr": "the learning rate."}


def test_plugins_json_lists_every_plugin_and_its_distribution(capsys):
    assert main(["plugins", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    kinds = {(plugin["kind"], plugin["name"]) for plugin in listed["plugins"]}
    assert {("search space", "symbolic-regression"), ("strategy", "pam-rt"), ("executor", "ray")} <= kinds
    assert "progress_bar" in listed["reporters"]
    sleep = next(module for module in listed["modules"] if module["name"] == "sleep")
    assert sleep["distribution"] == DISTRIBUTION and sleep["error"] is None


def test_plugins_unknown_name_is_one_line(capsys):
    assert main(["plugins", "nope"]) == 2
    err = capsys.readouterr().err
    assert "no plugin named 'nope'; installed:" in err and "symbolic-regression" in err and len(err.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A short run that names no problem (it gets the space's default) and one that does."""
    db = str(tmp_path_factory.mktemp("help") / "help.db")
    assert main(["run", "symbolic-regression", "--budget", "60", "--seed", "4", "--db", db]) == 0
    assert main(["run", "sleep", "--space-opt", "seconds=0", "--budget", "30", "--workers", "1", "--db", db]) == 0
    return db


def test_runs_shows_the_default_problem_and_json(store, capsys):
    capsys.readouterr()
    assert main(["runs", "--db", store]) == 0
    first = capsys.readouterr().out.splitlines()[1].split()
    assert first[3:5] == ["symbolic-regression", "nguyen-1"]
    assert main(["runs", "--json", "--db", store]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert [run["id"] for run in runs] == [1, 2]
    assert set(runs[0]) == {"id", "created", "space", "problem", "strategy", "predictor", "evaluated", "budget", "cached",
                            "best", "status"}
    assert runs[0]["problem"] == "nguyen-1" and runs[1]["problem"] is None and runs[1]["evaluated"] == 30
    assert runs[0]["status"] == "finished (budget)" and 0 < runs[0]["best"] <= 1


def test_show_and_top_json(store, capsys):
    capsys.readouterr()
    assert main(["show", "1", "--json", "--top", "3", "--db", store]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == {"run", "config", "evaluations", "failures", "predictor", "curve", "top"}
    assert shown["evaluations"]["spent"] == 60 and shown["config"]["seed"] == 4 and shown["predictor"] is None
    assert len(shown["curve"]) == 60 and shown["curve"][-1][1] == shown["top"][0]["fitness"]
    assert main(["top", "1", "-n", "2", "--json", "--db", store]) == 0
    top = json.loads(capsys.readouterr().out)
    assert top == shown["top"][:2] and set(top[0]) == {"id", "fitness", "parent", "program", "metrics", "solved"}


def test_show_explains_its_terms_once(store, capsys):
    capsys.readouterr()
    assert main(["show", "1", "--db", store]) == 0
    out = capsys.readouterr().out
    assert "(problem=nguyen-1)" in out.splitlines()[0]  # the default problem, named
    first_cache = out.index("duplicate cache")
    assert "spend none of the budget" in out[first_cache: first_cache + 200]
    first_workers = out.index("workers")
    assert "kept in flight at once" in out[first_workers: first_workers + 100]


def test_formulas_are_shown_expanded_where_that_is_shorter(nguyen1):
    from evolve import report
    from evolve.program import Node, Program

    # x1 * (x1 + x1*x1) - x1*x1 written as a tree; expanded it is x1**3
    nodes = (Node("input"), Node("mul", (0, 0)), Node("add", (0, 1)), Node("mul", (0, 2)), Node("sub", (3, 1)))
    program = Program(nodes, (4,), "symbolic-regression")
    assert nguyen1.describe(program) != "x1**3"
    assert report.readable(nguyen1, program) == "x1**3"
    factored = Program((Node("input"), Node("add", (0, 0)), Node("mul", (0, 1))), (2,), "symbolic-regression")
    assert report.readable(nguyen1, factored) == nguyen1.describe(factored)  # 2*x1**2 is no shorter
