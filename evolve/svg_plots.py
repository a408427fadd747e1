"""Small SVG line plots, written in Python, for the HTML report.

A report must open from disk with no network and no plotting library (matplotlib is only a benchmark
dependency), so plots are drawn here as plain SVG: axes with round ticks, lines or points, a shaded
band (quartiles of several runs), a legend. Every text in a plot (titles, labels, series names) is
escaped: a label that says `<script>` is shown as text.
"""

from __future__ import annotations

import dataclasses
import html
import math
from typing import Sequence

#: Series colours (colour-blind friendly, Okabe-Ito), reused in turn.
PALETTE = ("#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000", "#f0e442")


@dataclasses.dataclass(frozen=True)
class Series:
    """One line (or set of points) of a plot. `low`/`high`, when given, shade a band around it (e.g.
    the quartiles of several runs); non-finite values are left out."""

    label: str
    x: Sequence[float]
    y: Sequence[float]
    low: Sequence[float] | None = None
    high: Sequence[float] | None = None
    points: bool = False
    step: bool = False  # a best-so-far curve: hold each value until the next
    dashed: bool = False


@dataclasses.dataclass(frozen=True)
class Plot:
    title: str
    x_label: str
    y_label: str
    series: Sequence[Series]
    x_log: bool = False
    y_log: bool = False


def render(plot: Plot, width: int = 620, height: int = 300) -> str:
    """The plot as an inline `<svg>` element."""
    left, right, top, bottom = 62, 16, 28, 44
    inner_w, inner_h = width - left - right, height - top - bottom
    kept = [_finite(s, plot.x_log, plot.y_log) for s in plot.series]
    ys = [v for s in kept for v in [*s.y, *(s.low or ()), *(s.high or ())] if not math.isnan(v)]
    xs = [x for s in kept for x, y in zip(s.x, s.y) if not math.isnan(y)]
    legend = _legend(plot.series, left, height + 2)
    total = height + (15 * len(plot.series) + 6 if legend else 0)
    parts = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {total}" width="{width}"'
        f' height="{total}" role="img" aria-label="{_e(plot.title)}">',
        f'<text class="plot-title" x="{left}" y="18">{_e(plot.title)}</text>',
    ]
    if not ys:
        parts.append(f'<text class="empty" x="{left + inner_w / 2}" y="{top + inner_h / 2}" text-anchor="middle">'
                     "no data</text></svg>")
        return "".join(parts)
    x_axis = _Axis(min(xs), max(xs), plot.x_log, left, left + inner_w)
    y_axis = _Axis(min(ys), max(ys), plot.y_log, top + inner_h, top)
    parts.append(f'<rect class="frame" x="{left}" y="{top}" width="{inner_w}" height="{inner_h}"/>')
    for value in x_axis.ticks():
        px = x_axis.to_pixel(value)
        parts.append(f'<line class="grid" x1="{px:.1f}" y1="{top}" x2="{px:.1f}" y2="{top + inner_h}"/>'
                     f'<text class="tick" x="{px:.1f}" y="{top + inner_h + 14}" text-anchor="middle">{_tick(value)}</text>')
    for value in y_axis.ticks():
        py = y_axis.to_pixel(value)
        parts.append(f'<line class="grid" x1="{left}" y1="{py:.1f}" x2="{left + inner_w}" y2="{py:.1f}"/>'
                     f'<text class="tick" x="{left - 4}" y="{py + 4:.1f}" text-anchor="end">{_tick(value)}</text>')
    parts.append(f'<text class="axis-label" x="{left + inner_w / 2}" y="{height - 6}" text-anchor="middle">{_e(plot.x_label)}</text>')
    parts.append(f'<text class="axis-label" transform="translate(12 {top + inner_h / 2}) rotate(-90)"'
                 f' text-anchor="middle">{_e(plot.y_label)}</text>')
    for k, s in enumerate(kept):
        colour = PALETTE[k % len(PALETTE)]
        parts.append(f'<g class="series" data-series="{k}">')
        if s.low is not None and s.high is not None and s.x:
            upper = [(x_axis.to_pixel(x), y_axis.to_pixel(y)) for x, y in _stepped(s.x, s.high, s.step) if not math.isnan(y)]
            lower = [(x_axis.to_pixel(x), y_axis.to_pixel(y)) for x, y in _stepped(s.x, s.low, s.step) if not math.isnan(y)]
            outline = " ".join(f"{px:.1f},{py:.1f}" for px, py in upper + lower[::-1])
            parts.append(f'<polygon class="band" fill="{colour}" points="{outline}"/>')
        pixels = [None if math.isnan(y) else (x_axis.to_pixel(x), y_axis.to_pixel(y)) for x, y in _stepped(s.x, s.y, s.step)]
        if s.points:
            parts += [f'<circle cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="3" fill="{colour}"/>' for p in pixels if p]
        elif any(pixels):
            dash = ' stroke-dasharray="6 4"' if s.dashed else ""
            parts.append(f'<path class="line" stroke="{colour}"{dash} d="{_path(pixels)}"/>')
        parts.append("</g>")
    parts.append(legend)
    parts.append("</svg>")
    return "".join(parts)


def _legend(series: Sequence[Series], x: float, y: float) -> str:
    """Legend entries below the plot (clicking one hides or shows its series: see the report's script)."""
    if len(series) < 2 and not (series and series[0].label):
        return ""
    out = []
    for k, s in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        row = y + 15 * k
        out.append(f'<g class="legend-item" data-series="{k}"><rect x="{x}" y="{row}" width="10" height="10" fill="{colour}"/>'
                   f'<text x="{x + 14}" y="{row + 9}">{_e(s.label)}</text></g>')
    return "".join(out)


class _Axis:
    """Data values to pixels, linear or log10, with round ticks."""

    def __init__(self, lo: float, hi: float, log: bool, start: float, end: float):
        if log:
            lo, hi = math.log10(lo), math.log10(hi)
        if hi - lo < 1e-12:
            pad = abs(lo) * 0.05 or 0.5
            lo, hi = lo - pad, hi + pad
        self.lo, self.hi, self.log, self.start, self.end = lo, hi, log, start, end

    def to_pixel(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.start + (v - self.lo) / (self.hi - self.lo) * (self.end - self.start)

    def ticks(self) -> list[float]:
        if self.log:
            return [10.0**e for e in range(math.ceil(self.lo - 1e-9), math.floor(self.hi + 1e-9) + 1)]
        raw = (self.hi - self.lo) / 5
        magnitude = 10 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
        first = math.ceil(self.lo / step - 1e-9) * step
        count = int((self.hi - first) / step + 1e-9) + 1
        return [first + i * step for i in range(count)]


def _finite(s: Series, x_log: bool, y_log: bool) -> Series:
    """The series without the inner points of flat stretches (a best-so-far curve of 10,000
    evaluations changes a few dozen times); values a plot cannot place (non-finite, or not positive
    on a log axis) become NaN, a gap in the line."""
    def ok(v: float, log: bool) -> bool:
        return math.isfinite(v) and (v > 0 or not log)

    band = s.low is not None and s.high is not None
    rows = [
        (x, y, s.low[i] if band else y, s.high[i] if band else y)
        for i, (x, y) in enumerate(zip(s.x, s.y))
    ]
    gap = (math.nan,) * 3
    rows = [r if all(ok(v, y_log) for v in r[1:]) else (r[0], *gap) for r in rows if ok(r[0], x_log)]
    flat = [
        0 < i < len(rows) - 1 and rows[i - 1][1:] == rows[i][1:] == rows[i + 1][1:]
        for i in range(len(rows))
    ]
    rows = [r for r, skip in zip(rows, flat) if not skip]
    columns = list(zip(*rows)) if rows else [(), (), (), ()]
    return dataclasses.replace(
        s, x=columns[0], y=columns[1], low=columns[2] if band else None, high=columns[3] if band else None
    )


def _path(pixels: list[tuple[float, float] | None]) -> str:
    """SVG path data through the pixels; a None starts a new stretch (a gap in the data)."""
    out, move = [], True
    for p in pixels:
        if p is None:
            move = True
            continue
        out.append(f"{'M' if move else 'L'}{p[0]:.1f},{p[1]:.1f}")
        move = False
    return " ".join(out)


def _stepped(xs: Sequence[float], ys: Sequence[float], step: bool) -> list[tuple[float, float]]:
    """The points of a line; a step line holds each value until the next x."""
    if not step:
        return list(zip(xs, ys))
    out: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(zip(xs, ys)):
        if i:
            out.append((x, ys[i - 1]))
        out.append((x, y))
    return out


def _tick(value: float) -> str:
    return f"{value:.4g}"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
