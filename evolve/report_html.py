"""`evolve report`: one or more stored runs as a single self-contained HTML page.

The page needs no network and opens from disk: its style, its one small script (legend entries
hide and show a plot's series) and its pictures (SVG plots drawn by evolve.svg_plots, program
drawings by graphviz's dot) are all inline. Per run it shows the configuration, status, budget spent,
duplicate-cache answers and failures by reason; best fitness against evaluations and seconds; for a
guided run the predictor's record; the top programs (readable form, metrics, every export of their
space, a drawing, the space's own panel); and the lineage of the best program. With several runs,
their curves are overlaid, runs of one configuration (all but the seed) as a median with quartiles.

Everything a run, a program, a plugin or a data file contributes is escaped before it enters the
page (a space whose describe returns `<script>` shows that as text); only the drawings come as
markup, from dot, which escapes their labels itself.
"""

from __future__ import annotations

import dataclasses
import datetime
import html
import json
import logging
from typing import Any, Callable, Sequence

import numpy as np

from evolve import drawing, lineage, report, run_series, svg_plots
from evolve.errors import EvolveError
from evolve.population import Individual
from evolve.report_panel import Panel
from evolve.store import RunRecord, Store

log = logging.getLogger(__name__)

#: option values longer than this (a CSV problem's stored data) are shortened in the configuration table
LONGEST_OPTION = 160


def render(store: Store, run_ids: Sequence[int], make_space: Callable[[RunRecord], Any], top: int = 5) -> str:
    """The report of `run_ids` as HTML text. `make_space(run)` builds a run's grammar (never its
    evaluator); if it raises EvolveError, the run's programs are shown without their space."""
    runs = [store.run(run_id) for run_id in dict.fromkeys(run_ids)]  # each run once, in the order given
    drawings = _Drawings()
    sections = [_RunSection(store, run, make_space, top, drawings) for run in runs]
    title = "evolve report: " + ", ".join(f"run {run.id}" for run in runs)
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="meta">store {_e(store.path)}; written {_e(_now())}</p>']
    if drawings.missing:
        body.append(f'<p class="note">{_e(drawings.missing)}</p>')
    if len(runs) > 1:
        body.append('<nav><ul>' + "".join(f'<li><a href="#run-{s.run.id}">run {s.run.id}</a></li>' for s in sections)
                    + "</ul></nav>")
        body.append(_comparison(sections))
    body += [section.html() for section in sections]
    return _page(title, "\n".join(body))


def write(store: Store, run_ids: Sequence[int], path: str, make_space: Callable[[RunRecord], Any], top: int = 5) -> None:
    text = render(store, run_ids, make_space, top)
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise EvolveError(f"cannot write {path}: {e.strerror or e}") from None


# ---------------------------------------------------------------------------- one run


class _RunSection:
    """What the report shows of one run, read once from the store."""

    def __init__(self, store: Store, run: RunRecord, make_space, top: int, drawings: "_Drawings"):
        self.run, self.drawings = run, drawings
        try:
            self.space, self.space_error = make_space(run), None
        except EvolveError as e:
            self.space, self.space_error = None, str(e)
        self.evaluated, self.cached = store.counts(run.id)
        self.failures = store.failure_reasons(run.id)
        self.pending = len(store.pending(run.id))
        self.individuals = store.individuals(run.id)
        self.by_evaluations, self.by_seconds = run_series.best_curves(store, run)
        self.guided = run_series.guided_series(self.individuals)
        self.top = store.top(run.id, top)

    @property
    def best(self) -> float | None:
        return self.top[0].fitness if self.top else None

    def html(self) -> str:
        run = self.run
        parts = [f'<section class="run" id="run-{run.id}">', f"<h2>{_e(_run_title(run))}</h2>"]
        if self.space_error:
            parts.append(f'<p class="note">the space cannot be built here, so programs are shown as stored:'
                         f" {_e(self.space_error)}</p>")
        parts += [self._status(), self._configuration(), self._progress()]
        if self.guided:
            parts.append(self._predictor())
        parts += [self._top_programs(), self._lineage(), "</section>"]
        return "\n".join(parts)

    def _status(self) -> str:
        cfg = self.run.config
        failed = sum(n for _, n in self.failures)
        rows = [
            ("status", self.run.state),
            ("budget spent", f"{self.evaluated} of {cfg.budget} evaluations"),
            ("duplicate cache", f"{self.cached} proposals behaved like a program already evaluated and were answered"
                                " from the cache, spending no budget"),
            ("failed evaluations", str(failed)),
            ("pending proposals", str(self.pending)),
            ("best fitness", "-" if self.best is None else f"{self.best:.6g}"),
        ]
        out = ["<h3>Status</h3>", _table(rows)]
        if self.failures:
            out += ["<h4>Failures by reason</h4>",
                    _table([(str(n), reason) for reason, n in self.failures], header=("count", "reason"))]
        return "\n".join(out)

    def _configuration(self) -> str:
        cfg = dataclasses.asdict(self.run.config)
        rows = [(key, _shorten(value if isinstance(value, str) else json.dumps(value, default=str)))
                for key, value in cfg.items()]
        return "<details><summary>Configuration</summary>" + _table(rows) + "</details>"

    def _progress(self) -> str:
        curves = [
            svg_plots.Plot("best fitness against evaluations", "evaluations spent", "best fitness",
                           [_series("best so far", self.by_evaluations)]),
            svg_plots.Plot("best fitness against wall-clock time", "seconds since the run started", "best fitness",
                           [_series("best so far", self.by_seconds)]),
        ]
        return "<h3>Progress</h3>" + _figures(curves)

    def _predictor(self) -> str:
        g = self.guided
        total_predictor = g.predictor_seconds[-1][1] if g.predictor_seconds else 0.0
        total_evaluation = g.evaluation_seconds[-1][1] if g.evaluation_seconds else 0.0
        ratio = f" ({total_predictor / total_evaluation:.3g}x)" if total_evaluation else ""
        rows = [
            ("guided children", f"{g.guided} of {self.evaluated} evaluations"),
            ("online accuracy", _percent(g.overall_accuracy) + " (child vs parent, judged before training on it)"),
            ("acceptance rate", _percent(g.overall_acceptance) if g.overall_acceptance is not None
             else "- (this strategy does not accept or reject children)"),
            ("tries per evaluated child", f"{g.mean_tries:.2f}"),
            ("seconds", f"{total_predictor:.2f} s in the predictor against {total_evaluation:.2f} s in evaluations{ratio}"),
            ("strategy seconds by part", "; ".join(f"{name} {value:.2f} s" for name, value in g.seconds_by_part.items())),
        ]
        rates = [_points(f"online accuracy (last {g.window})", g.accuracy)]
        if g.acceptance:
            rates.append(_points(f"acceptance rate (last {g.window})", g.acceptance))
        plots = [
            svg_plots.Plot("the predictor over the run", "evaluations spent", "share", rates),
            svg_plots.Plot("children tried per evaluated child", "evaluations spent", "tries",
                           [_points(f"tries (mean of last {g.window})", g.tries)]),
            svg_plots.Plot("seconds spent (cumulative)", "evaluations spent", "seconds",
                           [_points("predictor (inference + training)", g.predictor_seconds),
                            _points("evaluations", g.evaluation_seconds)], y_log=True),
        ]
        return "<h3>Predictor</h3>" + _table(rows) + _figures(plots)

    def _top_programs(self) -> str:
        if not self.top:
            return "<h3>Top programs</h3><p>no program was evaluated successfully yet</p>"
        out = [f"<h3>Top {len(self.top)} programs</h3>"]
        for rank, ind in enumerate(self.top, start=1):
            out.append(self._program(rank, ind))
        return "\n".join(out)

    def _program(self, rank: int, ind: Individual) -> str:
        solved = " solved" if ind.evaluation.metrics.get("solved") else ""
        parent = "initial population" if ind.parent is None else f"parent {ind.parent}"
        head = f"#{rank}: individual {ind.id}, fitness {ind.fitness:.6g}{solved} ({parent})"
        metrics = [(key, _shorten(json.dumps(value, default=str))) for key, value in ind.evaluation.metrics.items()]
        parts = ['<div class="program">', f"<h4>{_e(head)}</h4>",
                 f'<p><code class="readable">{_e(self._describe(ind))}</code></p>', '<div class="row">']
        if self.space is not None:
            parts.append(f'<div class="drawing">{self.drawings.svg(ind.program, self.space.vocabulary)}</div>')
        parts.append('<div class="details">' + (_table(metrics, header=("metric", "value")) if metrics else "")
                     + self._exports(ind) + self._panel(ind) + "</div></div></div>")
        return "\n".join(parts)

    def _describe(self, ind: Individual) -> str:
        return repr(ind.program.pruned()) if self.space is None else report.describe(self.space, ind.program)

    def _exports(self, ind: Individual) -> str:
        formats = ("json",) if self.space is None else tuple(self.space.export_formats)
        out = []
        for fmt in formats:
            try:
                text = ind.program.to_json(indent=2) if self.space is None else str(self.space.export(ind.program, fmt))
            except Exception as e:  # noqa: BLE001 - plugin code: one failed export does not end the report
                text = f"(export failed: {type(e).__name__}: {e})"
            out.append(f"<details><summary>export: {_e(fmt)}</summary><pre>{_e(text)}</pre></details>")
        return "".join(out)

    def _panel(self, ind: Individual) -> str:
        if self.space is None:
            return ""
        try:
            panel = self.space.report_panel(ind.program)
        except Exception as e:  # noqa: BLE001 - plugin code
            log.debug("report panel failed", exc_info=True)
            return f'<p class="note">the space\'s panel failed: {_e(f"{type(e).__name__}: {e}")}</p>'
        if panel is None:
            return ""
        if not isinstance(panel, Panel):
            return (f'<p class="note">the space\'s report_panel returned a {_e(type(panel).__name__)},'
                    " not an evolve.report_panel.Panel</p>")
        text = "".join(f"<p>{_e(paragraph)}</p>" for paragraph in panel.text)
        return f'<div class="panel"><h5>{_e(panel.title)}</h5>{text}{_figures(panel.plots)}</div>'

    def _lineage(self) -> str:
        if not self.top:
            return ""
        names = [] if self.space is None else [i.name for i in self.space.vocabulary.inputs]
        steps = lineage.ancestry({ind.id: ind for ind in self.individuals}, self.top[0].id, names)
        rows = [(str(k), str(step.individual.id), f"{step.individual.fitness:.6g}", step.change,
                 self._describe(step.individual)) for k, step in enumerate(steps)]
        fitness = svg_plots.Plot("fitness along the lineage", "step (0: initial program)", "fitness", [svg_plots.Series(
            "", list(range(len(steps))), [step.individual.fitness for step in steps], points=len(steps) < 2)])
        return (f"<h3>Lineage of the best program ({len(steps) - 1} steps from the initial population)</h3>"
                + _figures([fitness]) + _table(rows, header=("step", "individual", "fitness", "what changed", "program")))


class _Drawings:
    """Program drawings by graphviz's dot; when dot is missing, one note says so instead."""

    def __init__(self):
        self.missing: str | None = None

    def svg(self, program, vocabulary) -> str:
        if self.missing:
            return ""
        try:
            return drawing.inline_svg(program, vocabulary)
        except drawing.DotMissing as e:
            self.missing = f"no program drawings: {e}"
        except EvolveError as e:
            return f'<p class="note">{_e(e)}</p>'
        return ""


# ---------------------------------------------------------------------------- several runs


def _comparison(sections: Sequence[_RunSection]) -> str:
    """Every run's curves overlaid; runs that differ only in their seed as one median with quartiles."""
    groups: dict[str, list[_RunSection]] = {}
    for section in sections:
        key = dataclasses.replace(section.run.config, seed=0).to_json()
        groups.setdefault(key, []).append(section)
    # seconds on a log axis where the runs' durations differ tenfold (RE's seconds against PAM-RT's minutes)
    durations = [s.by_seconds.x[-1] for s in sections if s.by_seconds.x and s.by_seconds.x[-1] > 0]
    log_seconds = bool(durations) and max(durations) > 10 * min(durations)
    by_evaluations, by_seconds = [], []
    for members in groups.values():
        label = f"{_strategy(members[0].run)} (run{'s' if len(members) > 1 else ''} {', '.join(str(m.run.id) for m in members)})"
        by_evaluations.append(_group_series(label, [m.by_evaluations for m in members]))
        by_seconds.append(_group_series(label, [m.by_seconds for m in members], log_seconds))
    several = any(len(m) > 1 for m in groups.values())
    plots = [
        svg_plots.Plot("best fitness against evaluations" + (" (median and quartiles)" if several else ""),
                       "evaluations spent", "best fitness", by_evaluations),
        svg_plots.Plot("best fitness against wall-clock time" + (" (median and quartiles)" if several else ""),
                       "seconds since the run started" + (" (log scale)" if log_seconds else ""), "best fitness",
                       by_seconds, x_log=log_seconds),
    ]
    rows = [(str(s.run.id), s.run.config.space, str(s.run.config.space_options.get("problem", "")), _strategy(s.run),
             str(s.run.config.seed), f"{s.evaluated}/{s.run.config.budget}", str(s.cached),
             "-" if s.best is None else f"{s.best:.6g}", s.run.state) for s in sections]
    header = ("run", "space", "problem", "strategy", "seed", "evaluated", "cached", "best", "status")
    return '<section class="comparison"><h2>Comparison</h2>' + _table(rows, header=header) + _figures(plots) + "</section>"


def _group_series(label: str, curves: Sequence[run_series.Curve], log: bool = False) -> svg_plots.Series:
    """One run's curve, or the median and quartiles of several on a common grid (linear, or
    geometric for a log axis)."""
    if len(curves) == 1:
        return _series(label, curves[0])
    end = max((c.x[-1] for c in curves if c.x), default=0.0)
    start = min((c.x[0] for c in curves if c.x and c.x[0] > 0), default=0.0)
    if log and 0 < start < end:
        grid = np.geomspace(start, end, 200)
    else:
        grid = np.linspace(0.0, end, 200) if end > 0 else np.zeros(1)
    values = np.stack([c.at(grid) for c in curves])
    with np.errstate(invalid="ignore"):
        low, median, high = np.percentile(values, [25, 50, 75], axis=0)
    return svg_plots.Series(label, grid.tolist(), median.tolist(), low.tolist(), high.tolist(), step=True)


# ---------------------------------------------------------------------------- pieces of HTML


def _series(label: str, curve: run_series.Curve) -> svg_plots.Series:
    return svg_plots.Series(label, curve.x, curve.y, step=True)


def _points(label: str, points) -> svg_plots.Series:
    return svg_plots.Series(label, [p[0] for p in points], [p[1] for p in points])


def _figures(plots) -> str:
    return '<div class="figures">' + "".join(svg_plots.render(plot) for plot in plots) + "</div>"


def _table(rows, header: Sequence[str] | None = None) -> str:
    head = "" if header is None else "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def _run_title(run: RunRecord) -> str:
    cfg = run.config
    problem = cfg.space_options.get("problem")
    return f"run {run.id}: {cfg.space}" + (f" ({problem})" if problem else "") + f" / {_strategy(run)}, seed {cfg.seed}"


def _strategy(run: RunRecord) -> str:
    cfg = run.config
    return cfg.strategy + (f" + {cfg.predictor}" if cfg.predictor else "")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _shorten(text: str) -> str:
    return text if len(text) <= LONGEST_OPTION else f"{text[:LONGEST_OPTION]}... ({len(text)} characters)"


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


_STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       margin: 24px auto; max-width: 1320px; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 19px; border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 32px; }
h3 { font-size: 16px; margin-top: 22px; } h4 { font-size: 14px; margin: 10px 0 4px; } h5 { font-size: 13px; margin: 6px 0; }
.meta, .note { color: #666; } .note { font-style: italic; }
table { border-collapse: collapse; margin: 6px 0; } td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left;
  vertical-align: top; } th { background: #f4f4f4; }
code.readable { font-size: 15px; background: #f6f8fa; padding: 2px 6px; border-radius: 4px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; max-height: 360px; }
details { margin: 4px 0; } summary { cursor: pointer; color: #0b5cad; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
.program { border: 1px solid #e3e3e3; border-radius: 6px; padding: 8px 12px; margin: 10px 0; }
.row { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; } .details { flex: 1; min-width: 320px; }
.drawing svg { max-width: 420px; height: auto; }
svg.plot { background: #fff; border: 1px solid #eee; }
svg.plot .frame { fill: none; stroke: #999; } svg.plot .grid { stroke: #eee; }
svg.plot text { font-size: 11px; fill: #333; } svg.plot .plot-title { font-size: 13px; font-weight: 600; }
svg.plot .line { fill: none; stroke-width: 1.8; } svg.plot .band { opacity: 0.18; stroke: none; }
svg.plot .legend-item { cursor: pointer; }
nav ul { list-style: none; padding: 0; display: flex; gap: 12px; }
"""

#: Clicking a legend entry hides or shows its series; then the page marks itself ready.
_SCRIPT = """
document.querySelectorAll("svg.plot").forEach(function (svg) {
  svg.querySelectorAll(".legend-item").forEach(function (item) {
    item.addEventListener("click", function () {
      var series = svg.querySelector('.series[data-series="' + item.getAttribute("data-series") + '"]');
      var hidden = series.style.display === "none";
      series.style.display = hidden ? "" : "none";
      item.style.opacity = hidden ? "1" : "0.4";
    });
  });
});
document.body.setAttribute("data-ready", "1");
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<style>{_STYLE}</style></head>\n<body>\n{body}\n<script>{_SCRIPT}</script>\n</body></html>\n")
