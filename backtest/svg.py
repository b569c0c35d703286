"""Inline SVG charts for the backtest report: line charts over time with markers, and
histograms. Pure Python, no chart library and no JavaScript, so the report is one file that
opens anywhere without a network (native ``<title>`` tooltips give the values on hover).

Plotting is the one place floats are right (STYLE.md): the inputs are already numbers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

WIDTH = 960
HEIGHT = 260
PAD_LEFT = 72
PAD_RIGHT = 16
PAD_TOP = 14
PAD_BOTTOM = 30

BLUE = "#2f6fdf"
GREEN = "#1a9e55"
RED = "#d2372d"
GREY = "#8a94a6"
ORANGE = "#e08a14"
PURPLE = "#7a4fc9"
PALETTE = (BLUE, ORANGE, PURPLE, GREEN, RED, "#128a8a", "#b0488f", GREY)


@dataclass(frozen=True)
class Line:
    """One series of a line chart: ``xs`` and ``ys`` of equal length, sorted by x."""

    name: str
    xs: Sequence[float]
    ys: Sequence[float]
    color: str = BLUE
    step: bool = False  # a position changes in steps, a price moves continuously
    fill_to_zero: bool = False


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    kind: str  # "buy" (triangle up) or "sell" (triangle down)
    title: str


@dataclass
class _Scale:
    lo: float
    hi: float
    a: float  # pixel of lo
    b: float  # pixel of hi
    ticks: list[float] = field(default_factory=list)

    def __call__(self, v: float) -> float:
        if self.hi == self.lo:
            return (self.a + self.b) / 2
        return self.a + (v - self.lo) * (self.b - self.a) / (self.hi - self.lo)


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi == lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    ticks: list[float] = []
    v = first
    while v <= hi + step * 1e-9 and len(ticks) < 50:
        ticks.append(round(v, 12))
        v += step
    return ticks


TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


def time_ticks(lo: float, hi: float, n: int = 8) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    step = next((s for s in TIME_STEPS if span / s <= n), TIME_STEPS[-1])
    first = math.ceil(lo / step) * step
    return [float(first + i * step) for i in range(int((hi - first) // step) + 1)][:50]


def fmt_time(ts: float, span: float) -> str:
    t = time.gmtime(ts)
    if span > 2 * 86400:
        return time.strftime("%m-%d %H:%M", t)
    if span > 600:
        return time.strftime("%H:%M", t)
    return time.strftime("%H:%M:%S", t)


def fmt_num(v: float) -> str:
    """A short label: 61,234.5 / 0.0012 / 1.2M."""
    a = abs(v)
    if v == int(v) and a < 1e7:
        return f"{int(v):,}"
    if a >= 1e7:
        return f"{v / 1e6:,.1f}M"
    if a >= 1000:
        return f"{v:,.0f}" if a >= 1e5 else f"{v:,.1f}"
    if a >= 1 or a == 0:
        return f"{v:,.2f}".rstrip("0").rstrip(".") if a < 100 else f"{v:,.1f}"
    return f"{v:.4g}"


def downsample(
    xs: Sequence[float], ys: Sequence[float], buckets: int
) -> tuple[list[float], list[float]]:
    """At most ``2 * buckets`` points keeping each x-bucket's first, min, max and last shape:
    a chart of 100,000 points drawn 900 pixels wide looks the same, and spikes survive."""
    n = len(xs)
    if n <= 2 * buckets:
        return list(xs), list(ys)
    lo, hi = xs[0], xs[-1]
    width = (hi - lo) / buckets or 1.0
    out_x: list[float] = []
    out_y: list[float] = []
    i = 0
    while i < n:
        k = int((xs[i] - lo) / width)
        j = i
        i_min = i_max = i
        while j < n and int((xs[j] - lo) / width) == k:
            if ys[j] < ys[i_min]:
                i_min = j
            if ys[j] > ys[i_max]:
                i_max = j
            j += 1
        for idx in sorted({i, i_min, i_max, j - 1}):
            out_x.append(xs[idx])
            out_y.append(ys[idx])
        i = j
    return out_x, out_y


def _frame(
    xs: _Scale, ys: _Scale, *, time_axis: bool, y_label: str, height: int, zero_line: bool
) -> list[str]:
    parts = []
    span = xs.hi - xs.lo
    for t in ys.ticks:
        y = ys(t)
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{PAD_LEFT - 6}" y="{y + 4:.1f}" class="yl">{escape(fmt_num(t))}</text>'
        )
    if zero_line and ys.lo < 0 < ys.hi:
        parts.append(
            f'<line x1="{PAD_LEFT}" x2="{WIDTH - PAD_RIGHT}" y1="{ys(0):.1f}" y2="{ys(0):.1f}" class="zero"/>'
        )
    for t in xs.ticks:
        x = xs(t)
        if x > WIDTH - PAD_RIGHT - 24:  # its label would be cut at the edge
            continue
        label = fmt_time(t, span) if time_axis else fmt_num(t)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_TOP}" y2="{height - PAD_BOTTOM}" class="grid"/>'
            f'<text x="{x:.1f}" y="{height - PAD_BOTTOM + 16}" class="xl">{escape(label)}</text>'
        )
    parts.append(
        f'<rect x="{PAD_LEFT}" y="{PAD_TOP}" width="{WIDTH - PAD_LEFT - PAD_RIGHT}" '
        f'height="{height - PAD_TOP - PAD_BOTTOM}" class="box"/>'
    )
    if y_label:
        parts.append(
            f'<text x="14" y="{(height - PAD_BOTTOM + PAD_TOP) / 2:.0f}" class="axis" '
            f'transform="rotate(-90 14 {(height - PAD_BOTTOM + PAD_TOP) / 2:.0f})">{escape(y_label)}</text>'
        )
    return parts


def _legend(lines: Iterable[tuple[str, str]], *, markers: bool) -> str:
    items = [f'<span><i style="background:{c}"></i>{escape(n)}</span>' for n, c in lines]
    if markers:
        items.append(f'<span><b style="color:{GREEN}">&#9650;</b> buy fill</span>')
        items.append(f'<span><b style="color:{RED}">&#9660;</b> sell fill</span>')
    return f'<div class="legend">{"".join(items)}</div>' if items else ""


def line_chart(
    lines: Sequence[Line],
    *,
    markers: Sequence[Marker] = (),
    y_label: str = "",
    height: int = HEIGHT,
    zero_line: bool = False,
    include_zero: bool = False,
) -> str:
    """An SVG line chart with a UTC time axis; markers are the strategy's fills."""
    lines = [ln for ln in lines if len(ln.xs)]
    if not lines:
        return '<p class="empty">no data</p>'
    all_x = [v for ln in lines for v in (ln.xs[0], ln.xs[-1])] + [m.x for m in markers]
    all_y = [v for ln in lines for v in ln.ys] + [m.y for m in markers]
    if include_zero:
        all_y.append(0.0)
    x_lo, x_hi = min(all_x), max(all_x)
    y_lo, y_hi = min(all_y), max(all_y)
    pad = (y_hi - y_lo) * 0.05 or abs(y_hi) * 0.01 or 1.0
    y_lo, y_hi = y_lo - pad, y_hi + pad
    xs = _Scale(x_lo, x_hi, PAD_LEFT, WIDTH - PAD_RIGHT, time_ticks(x_lo, x_hi))
    ys = _Scale(y_lo, y_hi, height - PAD_BOTTOM, PAD_TOP, nice_ticks(y_lo, y_hi))
    xs.ticks = [t for t in xs.ticks if x_lo <= t <= x_hi]
    ys.ticks = [t for t in ys.ticks if y_lo <= t <= y_hi]
    parts = _frame(xs, ys, time_axis=True, y_label=y_label, height=height, zero_line=zero_line)
    buckets = WIDTH - PAD_LEFT - PAD_RIGHT
    for ln in lines:
        dx, dy = downsample(ln.xs, ln.ys, buckets)
        pts: list[str] = []
        prev_y: float | None = None
        for x, y in zip(dx, dy, strict=True):
            px, py = xs(x), ys(y)
            if ln.step and prev_y is not None:
                pts.append(f"{px:.1f},{prev_y:.1f}")
            pts.append(f"{px:.1f},{py:.1f}")
            prev_y = py
        if ln.fill_to_zero:
            base = ys(min(max(0.0, y_lo), y_hi))
            area = f"{xs(dx[0]):.1f},{base:.1f} " + " ".join(pts) + f" {xs(dx[-1]):.1f},{base:.1f}"
            parts.append(f'<polygon points="{area}" fill="{ln.color}" fill-opacity="0.18"/>')
        parts.append(
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="{ln.color}" '
            f'stroke-width="1.4"><title>{escape(ln.name)}</title></polyline>'
        )
    for m in markers:
        px, py = xs(m.x), ys(m.y)
        if m.kind == "buy":
            shape = f"{px:.1f},{py - 1:.1f} {px - 4.5:.1f},{py + 7:.1f} {px + 4.5:.1f},{py + 7:.1f}"
            color = GREEN
        else:
            shape = f"{px:.1f},{py + 1:.1f} {px - 4.5:.1f},{py - 7:.1f} {px + 4.5:.1f},{py - 7:.1f}"
            color = RED
        parts.append(
            f'<polygon points="{shape}" fill="{color}" fill-opacity="0.85" class="mk">'
            f"<title>{escape(m.title)}</title></polygon>"
        )
    legend = _legend(((ln.name, ln.color) for ln in lines), markers=bool(markers))
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" class="chart" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>{legend}'
    )


def histogram(
    values: Sequence[float],
    *,
    x_label: str,
    color: str = BLUE,
    bins: int = 40,
    height: int = 200,
    marks: Sequence[tuple[str, float]] = (),
    clip_quantile: float = 0.995,
) -> str:
    """An SVG histogram; ``marks`` are labelled vertical lines (p50, p99, zero). The top
    ``1 - clip_quantile`` of values is folded into the last bin so one outlier does not
    squash the rest (the bin says so)."""
    vals = sorted(v for v in values if math.isfinite(v))
    if not vals:
        return '<p class="empty">no data</p>'
    lo = vals[0]
    hi = vals[min(len(vals) - 1, int(len(vals) * clip_quantile))]
    clipped = sum(1 for v in vals if v > hi)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in vals:
        counts[min(bins - 1, max(0, int((v - lo) / width)))] += 1
    top = max(counts)
    xs = _Scale(lo, hi, PAD_LEFT, WIDTH - PAD_RIGHT, nice_ticks(lo, hi, 8))
    ys = _Scale(0, top * 1.08, height - PAD_BOTTOM, PAD_TOP, nice_ticks(0, top * 1.08, 4))
    xs.ticks = [t for t in xs.ticks if lo <= t <= hi]
    parts = _frame(xs, ys, time_axis=False, y_label="count", height=height, zero_line=False)
    for i, c in enumerate(counts):
        if not c:
            continue
        x0, x1 = xs(lo + i * width), xs(lo + (i + 1) * width)
        y = ys(c)
        extra = f" (+{clipped} above)" if i == bins - 1 and clipped else ""
        parts.append(
            f'<rect x="{x0 + 0.5:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 1, 0.8):.1f}" '
            f'height="{ys(0) - y:.1f}" fill="{color}" fill-opacity="0.8">'
            f"<title>{fmt_num(lo + i * width)} to {fmt_num(lo + (i + 1) * width)}: {c}{extra}</title></rect>"
        )
    for i, (label, v) in enumerate(marks):
        if lo <= v <= hi:
            x = xs(v)
            y = PAD_TOP + 12 + 13 * i  # one line each: close marks do not overprint
            parts.append(
                f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{PAD_TOP}" y2="{height - PAD_BOTTOM}" class="mark"/>'
                f'<text x="{x + 3:.1f}" y="{y}" class="ml">{escape(label)}</text>'
            )
    parts.append(
        f'<text x="{WIDTH - PAD_RIGHT}" y="{height - 2}" class="axis" text-anchor="end">{escape(x_label)}</text>'
    )
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" class="chart" role="img" '
        f'xmlns="http://www.w3.org/2000/svg">{"".join(parts)}</svg>'
    )


CSS = """
svg.chart{width:100%;height:auto;display:block}
svg .grid{stroke:#e6e9ef;stroke-width:1}
svg .zero{stroke:#9aa3b2;stroke-width:1;stroke-dasharray:4 3}
svg .box{fill:none;stroke:#c9cfd9}
svg .mark{stroke:#333;stroke-width:1;stroke-dasharray:3 3}
svg text{font:11px system-ui,sans-serif;fill:#5b6474}
svg .yl{text-anchor:end}
svg .xl{text-anchor:middle}
svg .ml{fill:#222}
svg .mk:hover{fill-opacity:1;stroke:#000}
.legend{display:flex;gap:14px;flex-wrap:wrap;font-size:12px;color:#5b6474;margin:2px 0 0 72px}
.legend i{display:inline-block;width:14px;height:3px;margin-right:5px;vertical-align:middle}
.legend b{margin-right:4px}
"""
