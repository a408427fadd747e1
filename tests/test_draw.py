"""`evolve draw`: one program as a picture by graphviz's dot, with operand order visible and dead
nodes pruned; one clear line when dot is missing or the file name names no picture format."""

from __future__ import annotations

import shutil

import pytest

from evolve import drawing
from evolve.cli import main
from evolve.engine import start_run
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.program import Node, Program
from evolve.store import RunConfig, Store

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed (Debian: apt-get"
                               " install graphviz; .ci/run installs it): programs cannot be drawn")


@pytest.fixture(scope="module")
def space():
    return PluginManager().make_space(SpaceSpec("symbolic-regression", {"problem": "nguyen-9"}))  # inputs x1, x2


def program(*nodes: Node, output: int) -> Program:
    return Program((Node("input"), Node("input"), *nodes), (output,), "symbolic-regression")


def edges_into(dot: str, node: int) -> list[str]:
    return [line.strip() for line in dot.splitlines() if line.strip().startswith("n") and f"-> n{node}" in line]


def test_operand_order_is_numbered_on_non_commutative_ops_only(space):
    # x2 - sin(x1), and sin(x1) - x2: the same nodes, arguments swapped
    minus = program(Node("sin", (0,)), Node("sub", (1, 2)), output=3)
    swapped = program(Node("sin", (0,)), Node("sub", (2, 1)), output=3)
    plus = program(Node("sin", (0,)), Node("add", (1, 2)), output=3)
    assert edges_into(drawing.to_dot(minus, space.vocabulary), 3) == ['n1 -> n3 [label="1"];', 'n2 -> n3 [label="2"];']
    assert edges_into(drawing.to_dot(swapped, space.vocabulary), 3) == ['n2 -> n3 [label="1"];', 'n1 -> n3 [label="2"];']
    assert edges_into(drawing.to_dot(plus, space.vocabulary), 3) == ["n1 -> n3;", "n2 -> n3;"]


def test_dead_nodes_and_unread_inputs_are_not_drawn(space):
    # cos(x2) is computed but never read; the output reads only x1
    dot = drawing.to_dot(program(Node("cos", (1,)), Node("mul", (0, 0)), output=3), space.vocabulary)
    assert "cos" not in dot and 'label="x2"' not in dot
    assert 'label="x1"' in dot and 'label="mul"' in dot and dot.count("n0 -> n2;") == 2  # x1*x1: both arguments


def test_labels_cannot_break_out_of_dot_strings(space):
    assert drawing._attributes({"label": 'a"b\\N\nc'}) == 'label="a\\"b\\\\N c"'


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("draw") / "runs.db")
    with Store(path) as store:
        config = RunConfig("symbolic-regression", {"problem": "nguyen-1"}, "regularized-evolution",
                           {"population_size": 20, "tournament_size": 4}, None, {}, "serial", {}, 4, 40, 0)
        start_run(store, config).execute()
    return path


@needs_dot
def test_draw_writes_svg_and_png(store_path, tmp_path, capsys):
    with Store(store_path, read_only=True) as store:
        best = store.top(1, 1)[0]
    svg, png = tmp_path / "best.svg", tmp_path / "best.png"
    assert main(["draw", "1", str(best.id), "--db", store_path, "-o", str(svg)]) == 0
    assert main(["draw", "1", str(best.id), "--db", store_path, "-o", str(png)]) == 0
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text and ">x1</text>" in text and ">output</text>" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert capsys.readouterr().err.count("wrote") == 2


def test_missing_dot_is_one_clear_line(store_path, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot anywhere on it
    assert main(["draw", "1", "1", "--db", store_path, "-o", str(tmp_path / "p.svg")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "graphviz" in err and "apt-get install graphviz" in err
    assert not (tmp_path / "p.svg").exists()


def test_draw_mistakes_are_one_line(store_path, tmp_path, capsys):
    assert main(["draw", "1", "1", "--db", store_path, "-o", str(tmp_path / "p.jpg")]) == 2
    assert main(["draw", "1", "99999", "--db", store_path, "-o", str(tmp_path / "p.svg")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "must end in .svg or .png" in lines[0] and "no individual 99999" in lines[1]


@needs_dot
def test_names_from_a_vocabulary_are_escaped_in_the_svg():
    from evolve.ops import Input, Vocabulary, elementwise_ops

    vocabulary = Vocabulary((Input('<script>alert("x")</script>', "real"), Input("b\\N", "real")), ("real",),
                            elementwise_ops(("sub",), "real"))
    svg = drawing.inline_svg(program(Node("sub", (0, 1)), output=2), vocabulary)
    assert svg.startswith("<svg") and "<script" not in svg
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in svg and ">b\\N</text>" in svg
