"""`evolve report`: the HTML page of a real small PAM-RT run and of a comparison of two runs, loaded in
a real headless Chromium (the page loads with no console errors, its script runs, plots and program
drawings render, a screenshot is written), and escaping: what a space contributes is shown as text."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import evolve
from evolve.cli import main
from evolve.engine import start_run
from evolve.plugin_manager import PluginManager, SpaceSpec
from evolve.report_panel import Panel, Plot, Series
from evolve.search_spaces.symbolic_regression import SymbolicRegression
from evolve.store import RunConfig, Store

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install"
                                    " chromium; .ci/run installs it): the report is not loaded in a browser")

SMALL = {"population_size": 20, "tournament_size": 4}
QUICK_PREDICTOR = {"warmup": 24, "warmup_steps": 10, "train_every": 4, "steps": 1, "width": 16, "heads": 2,
                   "batch_programs": 16}


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    """A store with a real small PAM-RT run (run 1) and a regularized-evolution run (run 2), Nguyen-1."""
    path = str(tmp_path_factory.mktemp("report") / "runs.db")
    with Store(path) as store:
        pam = RunConfig("symbolic-regression", {"problem": "nguyen-1"}, "pam-rt",
                        {**SMALL, "chain_length": 2, "tournaments": 2}, "binary", QUICK_PREDICTOR, "serial", {}, 4, 60, 0)
        regularized = RunConfig("symbolic-regression", {"problem": "nguyen-1"}, "regularized-evolution", SMALL,
                                None, {}, "serial", {}, 4, 60, 1)
        for config in (pam, regularized):
            start_run(store, config).execute()
    return path


def chromium(page: str, screenshot: str, width: int = 1320, height: int = 2400) -> tuple[str, list[str]]:
    """Load `page` in headless Chromium: (the DOM after its script ran, the page's console messages),
    and its screenshot written to `screenshot`."""
    profile = os.path.join(os.path.dirname(screenshot), "chromium-profile")
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", f"--window-size={width},{height}",
         f"--screenshot={screenshot}", "--dump-dom", "file://" + os.path.abspath(page)],
        capture_output=True, text=True, timeout=180, check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    print(f"screenshot of {page}: {screenshot}")
    return done.stdout, console


def png_pixels(path: str) -> np.ndarray:
    """The screenshot's RGB pixels [height, width, 3]."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def assert_rendered(pixels: np.ndarray) -> None:
    """The screenshot is not blank and shows the plots' first colour (#0072b2, a curve)."""
    not_white = np.any(pixels < 245, axis=2).mean()
    assert not_white > 0.02, f"the screenshot is nearly blank ({not_white:.1%} of pixels not white)"
    curve = np.all(np.abs(pixels.astype(int) - [0x00, 0x72, 0xB2]) <= 8, axis=2).sum()
    assert curve > 200, "no plotted curve is visible in the screenshot"


def test_report_of_a_pam_rt_run(store_path, tmp_path):
    page = str(tmp_path / "report.html")
    assert main(["report", "1", "--db", store_path, "-o", page]) == 0
    text = open(page, encoding="utf-8").read()
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "")  # the page loads nothing from anywhere
    assert "https://" not in text and " src=" not in text and " href=\"http" not in text
    for heading in ("Status", "Progress", "Predictor", "Top 5 programs", "Lineage of the best program", "Fit to the data"):
        assert heading in text
    for words in ("best fitness against evaluations", "best fitness against wall-clock time", "online accuracy",
                  "acceptance rate", "tries per evaluated child", "s in the predictor against", "export: latex",
                  "export: python", "initial program", "duplicate cache"):
        assert words in text
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    dom, console = chromium(page, str(tmp_path / "report.png"))
    assert console == []
    assert 'data-ready="1"' in dom  # the page's script ran to its end
    assert len(re.findall(r'<svg class="plot"', dom)) >= 2 + 3 + 5  # progress, predictor, one panel per top program
    if shutil.which("dot"):
        assert len(re.findall(r'<g id="node\d+" class="node"', dom)) >= 5 * 2  # five drawings, inputs and ops
    assert_rendered(png_pixels(str(tmp_path / "report.png")))


@needs_chromium
def test_report_comparing_two_runs(store_path, tmp_path):
    page = str(tmp_path / "compare.html")
    assert main(["report", "1", "2", "--db", store_path, "-o", page, "--top", "3"]) == 0
    dom, console = chromium(page, str(tmp_path / "compare.png"), height=1400)
    assert console == []
    assert "Comparison" in dom and 'id="run-1"' in dom and 'id="run-2"' in dom
    assert "pam-rt + binary (run 1)" in dom and "regularized-evolution (run 2)" in dom  # the overlaid curves' legend
    assert_rendered(png_pixels(str(tmp_path / "compare.png")))


def test_runs_of_one_configuration_are_shown_as_median_and_quartiles(tmp_path):
    path = str(tmp_path / "seeds.db")
    with Store(path) as store:
        for seed in (1, 2, 3):
            config = RunConfig("symbolic-regression", {"problem": "nguyen-1"}, "regularized-evolution", SMALL,
                               None, {}, "serial", {}, 4, 40, seed)
            start_run(store, config).execute()
    page = str(tmp_path / "seeds.html")
    assert main(["report", "1", "2", "3", "--db", path, "-o", page, "--top", "1"]) == 0
    text = open(page, encoding="utf-8").read()
    assert "(median and quartiles)" in text and "regularized-evolution (runs 1, 2, 3)" in text
    assert text.count('class="band"') == 2  # one band per comparison plot


HOSTILE = '<script>document.title="pwned"</script>'


class HostileSpace(SymbolicRegression):
    """A space whose every contribution to the page is markup that would run if it were not escaped."""

    export_formats = ("json", "html")

    def describe(self, program):
        return HOSTILE + "<b>bold</b>"

    def export(self, program, format):
        return HOSTILE if format == "html" else super().export(program, format)

    def report_panel(self, program):
        return Panel(HOSTILE, [f"<img src=x onerror=\"document.title='pwned'\">{HOSTILE}"],
                     [Plot(HOSTILE, "<i>x</i>", "y", [Series(HOSTILE, [0.0, 1.0], [0.0, 1.0])])])


class HostilePlugin:
    @staticmethod
    @evolve.hookimpl
    def evolve_search_spaces():
        return {"hostile": HostileSpace}


def test_what_a_space_contributes_is_shown_as_text(tmp_path):
    from evolve import report_html

    plugins = PluginManager(extra_plugins=(HostilePlugin,))
    with Store(str(tmp_path / "hostile.db")) as store:
        config = RunConfig("hostile", {"problem": "nguyen-1"}, "regularized-evolution", SMALL, None, {}, "serial", {}, 4, 30, 0)
        start_run(store, config, plugins).execute()
        text = report_html.render(store, [1], lambda run: plugins.make_space(SpaceSpec(run.config.space,
                                                                                       run.config.space_options)))
    assert text.count("<script") == 1  # the page's own
    assert "<img" not in text and "<b>" not in text and "<i>" not in text
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt;" in text
    page = tmp_path / "hostile.html"
    page.write_text(text, encoding="utf-8")
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run installs it)")
    dom, console = chromium(str(page), str(tmp_path / "hostile.png"), height=900)
    assert console == [] and "<title>evolve report: run 1</title>" in dom and "pwned</title>" not in dom


def test_a_panel_that_fails_or_returns_something_else_is_a_note(tmp_path, store_path):
    from evolve import report_html

    class Broken(SymbolicRegression):
        def report_panel(self, program):
            raise RuntimeError("no <data>")

    class Wrong(SymbolicRegression):
        def report_panel(self, program):
            return "<p>markup</p>"

    with Store(store_path, read_only=True) as store:
        broken = report_html.render(store, [2], lambda run: Broken(**run.config.space_options), top=1)
        wrong = report_html.render(store, [2], lambda run: Wrong(**run.config.space_options), top=1)
    assert "the space's panel failed: RuntimeError: no &lt;data&gt;" in broken
    assert "returned a str, not an evolve.report_panel.Panel" in wrong and "<p>markup" not in wrong


def test_report_mistakes_are_one_line(store_path, tmp_path, capsys):
    assert main(["report", "9", "--db", store_path, "-o", str(tmp_path / "r.html")]) == 2
    assert main(["report", "1", "--db", store_path, "-o", str(tmp_path / "missing" / "r.html")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "no run 9" in lines[0] and "cannot write" in lines[1]


def test_a_run_with_nothing_recorded_yet_has_a_report(tmp_path):
    from evolve import report_html

    with Store(str(tmp_path / "empty.db")) as store:
        run = store.create_run(RunConfig("symbolic-regression", {"problem": "nguyen-1"}, budget=10))
        text = report_html.render(store, [run.id], lambda run: SymbolicRegression(**run.config.space_options))
    assert "0 of 10 evaluations" in text and "no program was evaluated successfully yet" in text
    assert text.count(">no data</text>") == 2  # both progress plots, empty


def test_report_of_a_nas_cell_run_draws_cells_and_offers_their_exports(tmp_path):
    """The report of another kind of program: NAS-Bench-101 cells (tabular evaluator on a small file
    in the benchmark's format), each top cell with its spec and flax exports and, with graphviz, its
    drawing; the failures (cells absent from the file) counted by reason."""
    from test_nas_runs import data_file

    data = data_file(tmp_path / "cells.tfrecord", cells=60)
    db, page = str(tmp_path / "nas.db"), str(tmp_path / "nas.html")
    assert main(["run", "nas-cells", "--space-opt", "evaluator=tabular", "--space-opt", f"data={data}",
                 "--budget", "40", "--db", db]) == 0
    assert main(["report", "1", "--db", db, "-o", page]) == 0
    text = open(page, encoding="utf-8").read()
    for words in ("Top 5 programs", "Lineage of the best program", "export: nasbench", "export: flax",
                  "Failures by reason", "cell not in"):
        assert words in text
    assert text.count("&quot;matrix&quot;: [") >= 5  # each top cell's spec, readable by the benchmark's API
    if shutil.which("dot"):
        assert len(re.findall(r'class="node"', text)) >= 5 * 3  # five drawn cells: input, a vertex, output
