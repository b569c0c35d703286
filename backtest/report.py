"""The backtest report: one self-contained HTML page built from a run's output directory.

``oms backtest`` writes ``summary.json``, ``orders.csv``, ``fills.csv``, ``series.csv`` and
``latency.csv`` into its output directory, then calls :func:`write_report`, which reads them
back and writes ``report.html`` beside them. The page needs no network: CSS, charts (inline
SVG from :mod:`backtest.svg`) and the few lines of JavaScript that sort tables are all inside
it, so it can be mailed, archived or opened on a machine without internet.

Every input is optional: a run that made no orders, or a directory holding only a summary,
still gives a page that says what is missing instead of failing.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from backtest import svg

REPORT_NAME = "report.html"
# Long tables are cut here (the CSV files beside the page hold every row).
MAX_TABLE_ROWS = 300
# Fill markers on one price chart; beyond this an even sample is drawn (and the page says so).
MAX_MARKERS = 3000

Row = dict[str, str]


@dataclass
class RunOutput:
    """What a backtest wrote, read back."""

    out_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)
    orders: list[Row] = field(default_factory=list)
    fills: list[Row] = field(default_factory=list)
    series: list[Row] = field(default_factory=list)
    latency: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def write_report(out_dir: Path) -> Path:
    """Write ``out_dir/report.html`` from the run's files in ``out_dir``; return its path."""
    run = read_output(out_dir)
    path = out_dir / REPORT_NAME
    path.write_text(render(run), encoding="utf-8")
    return path


def read_output(out_dir: Path) -> RunOutput:
    run = RunOutput(out_dir=out_dir)
    summary_path = out_dir / "summary.json"
    if summary_path.exists():
        try:
            loaded = json.loads(summary_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            run.problems.append(f"summary.json: {exc}")
        else:
            if isinstance(loaded, dict):
                run.summary = loaded
            else:
                run.problems.append("summary.json: not a JSON object")
    else:
        run.problems.append("summary.json: missing")
    for name in ("orders", "fills", "series", "latency"):
        path = out_dir / f"{name}.csv"
        if not path.exists():
            run.problems.append(f"{name}.csv: missing")
            continue
        try:
            with path.open(newline="", encoding="utf-8") as f:
                rows = [dict(r) for r in csv.DictReader(f)]
        except (OSError, csv.Error, UnicodeDecodeError) as exc:
            run.problems.append(f"{name}.csv: {exc}")
            continue
        setattr(run, name, rows)
    return run


# -- small helpers ------------------------------------------------------------------------


def num(v: Any) -> float | None:
    """A float for plotting, or None for an empty or unparsable cell."""
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def quantile(sorted_vals: Sequence[float], q: float) -> float:
    if not sorted_vals:
        return math.nan
    k = min(len(sorted_vals) - 1, max(0, round(q * (len(sorted_vals) - 1))))
    return sorted_vals[k]


def fmt(v: Any, digits: int = 2) -> str:
    """A cell: numbers with thousands separators, everything else as given."""
    f = num(v)
    if f is None:
        if isinstance(v, dict | list):
            return json.dumps(v, default=str)
        return "" if v is None else str(v)
    if isinstance(v, int) or (isinstance(v, str) and v.lstrip("-").isdigit()):
        return f"{int(f):,}"
    if abs(f) >= 1e5:
        return f"{f:,.0f}"
    if abs(f) >= 1 or f == 0:
        return f"{f:,.{digits}f}"
    return f"{f:.4g}"


def _cls(v: Any) -> str:
    f = num(v)
    if f is None or f == 0:
        return ""
    return "pos" if f > 0 else "neg"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric_from: int = 1) -> str:
    """A sortable table; columns from ``numeric_from`` on are right-aligned numbers."""
    head = "".join(
        f'<th class="{"n" if i >= numeric_from else ""}">{escape(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            if i >= numeric_from and num(v) is not None:
                cells.append(f'<td class="n" data-v="{num(v)}">{escape(fmt(v))}</td>')
            else:
                cells.append(f"<td>{escape(fmt(v))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    if not body:
        return '<p class="empty">none</p>'
    return f'<table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _col(rows: Iterable[Row], key: str) -> list[float]:
    return [f for f in (num(r.get(key)) for r in rows) if f is not None]


def _mean(vals: Sequence[float]) -> float | None:
    return statistics.fmean(vals) if vals else None


# -- sections -----------------------------------------------------------------------------


def _headline(run: RunOutput) -> str:
    s = run.summary
    denials = s.get("denials") if isinstance(s.get("denials"), dict) else {}
    rejects = s.get("rejects") if isinstance(s.get("rejects"), dict) else {}
    pos = s.get("final_position")
    if isinstance(pos, dict):
        pos_text = ", ".join(f"{k} {fmt(v, 6)}" for k, v in pos.items()) or "flat"
    else:
        pos_text = fmt(pos, 6)
    in_doubt = s.get("in_doubt_total", s.get("in_doubt"))
    unresolved = None
    if isinstance(s.get("in_doubt"), dict):
        unresolved = s["in_doubt"].get("unresolved")
    if isinstance(in_doubt, dict):
        in_doubt = sum(int(v) for k, v in in_doubt.items() if num(v) is not None)
    cards = [
        ("P&L total", s.get("pnl_total"), True),
        ("P&L realized", s.get("pnl_realized"), True),
        ("max drawdown", s.get("max_drawdown"), False),
        ("fees", s.get("fees"), False),
        ("orders", s.get("orders", len(run.orders) or None), False),
        ("fills", s.get("fills", len(run.fills) or None), False),
        ("volume", s.get("volume"), False),
        ("final position", pos_text, False),
        ("rejects", sum(int(v) for v in rejects.values()) if rejects else 0, False),
        ("denials", sum(int(v) for v in denials.values()) if denials else 0, False),
        ("in doubt (answer lost)", in_doubt, False),
        ("in doubt, unresolved", unresolved, True),
        ("market events", s.get("events"), False),
        ("events / s", s.get("events_per_s"), False),
    ]
    out = []
    for label, v, signed in cards:
        if v is None:
            continue
        cls = _cls(v) if signed else ""
        if label == "in doubt, unresolved":
            cls = "neg" if num(v) else ""  # any left unresolved is a defect
        out.append(
            f'<div class="card"><div class="k">{escape(label)}</div>'
            f'<div class="v {cls}">{escape(fmt(v) if not isinstance(v, str) or num(v) is not None else v)}</div></div>'
        )
    lat = _latency_p50s(run)
    for label, v in lat:
        out.append(
            f'<div class="card"><div class="k">{escape(label)} p50</div>'
            f'<div class="v">{escape(fmt(v))} ms</div></div>'
        )
    return f'<div class="cards">{"".join(out)}</div>'


def _latency_p50s(run: RunOutput) -> list[tuple[str, float]]:
    """The latency p50s the summary states (any key holding 'latency'), else the CSV's."""
    for key, v in run.summary.items():
        if "latency" in key and isinstance(v, dict):
            return [
                (str(k).removesuffix("_ms").removesuffix("_p50"), f)
                for k, val in v.items()
                if (f := num(val)) is not None
            ]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for r in run.latency:
        f = num(r.get("ms"))
        if f is not None:
            by_kind[r.get("kind", "")].append(f)
    return [(k, statistics.median(v)) for k, v in sorted(by_kind.items())]


def _series_by_symbol(run: RunOutput) -> dict[str, list[tuple[float, Row]]]:
    out: dict[str, list[tuple[float, Row]]] = defaultdict(list)
    for r in run.series:
        ts = num(r.get("ts"))
        if ts is not None:
            out[r.get("symbol", "")].append((ts, r))
    for rows in out.values():
        rows.sort(key=lambda p: p[0])
    return dict(out)


def _xy(
    rows: Sequence[tuple[float, Row]], key: str, transform: Any = None
) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for ts, r in rows:
        f = num(r.get(key))
        if f is not None:
            xs.append(ts)
            ys.append(transform(f) if transform else f)
    return xs, ys


def _fill_markers(fills: Sequence[Row]) -> tuple[list[svg.Marker], str]:
    markers = []
    for r in fills:
        ts, px = num(r.get("ts")), num(r.get("price"))
        if ts is None or px is None:
            continue
        side = (r.get("side") or "").lower()
        clock = _clock(str(ts))
        title = (
            f"{side} {r.get('quantity', '')} @ {r.get('price', '')} on {r.get('venue', '')}"
            f" ({r.get('liquidity', '')}) at {clock} UTC, {r.get('client_order_id', '')}"
        )
        markers.append(svg.Marker(ts, px, "buy" if side == "buy" else "sell", title))
    note = ""
    if len(markers) > MAX_MARKERS:
        step = len(markers) / MAX_MARKERS
        note = f"{len(markers):,} fills; an even sample of {MAX_MARKERS:,} is marked."
        markers = [markers[int(i * step)] for i in range(MAX_MARKERS)]
    return markers, note


def _price_section(run: RunOutput, by_symbol: Mapping[str, list[tuple[float, Row]]]) -> str:
    fills_by_symbol: dict[str, list[Row]] = defaultdict(list)
    for r in run.fills:
        fills_by_symbol[r.get("symbol", "")].append(r)
    symbols = sorted(set(by_symbol) | set(fills_by_symbol))
    if not symbols:
        return '<p class="empty">no price series and no fills</p>'
    out = []
    for sym in symbols:
        xs, ys = _xy(by_symbol.get(sym, []), "mid")
        markers, note = _fill_markers(fills_by_symbol.get(sym, []))
        chart = svg.line_chart(
            [svg.Line(f"{sym} mid", xs, ys, svg.BLUE)], markers=markers, y_label="price", height=300
        )
        n_buy = sum(
            1 for r in fills_by_symbol.get(sym, []) if (r.get("side") or "").lower() == "buy"
        )
        n_sell = len(fills_by_symbol.get(sym, [])) - n_buy
        out.append(
            f"<h3>{escape(sym or '(no symbol)')} <small>{n_buy:,} buy fills, {n_sell:,} sell fills</small></h3>"
            f"{chart}" + (f'<p class="note">{escape(note)}</p>' if note else "")
        )
    return "".join(out)


def _position_section(by_symbol: Mapping[str, list[tuple[float, Row]]]) -> str:
    lines = []
    for i, (sym, rows) in enumerate(sorted(by_symbol.items())):
        xs, ys = _xy(rows, "position")
        lines.append(svg.Line(sym, xs, ys, svg.PALETTE[i % len(svg.PALETTE)], step=True))
    return svg.line_chart(lines, y_label="position", zero_line=True, include_zero=True)


def _equity_section(run: RunOutput) -> str:
    # equity and drawdown are the whole portfolio's: one value per timestamp (the last row)
    eq: dict[float, float] = {}
    dd: dict[float, float] = {}
    for r in run.series:
        ts = num(r.get("ts"))
        if ts is None:
            continue
        if (e := num(r.get("equity"))) is not None:
            eq[ts] = e
        if (d := num(r.get("drawdown"))) is not None:
            dd[ts] = -abs(d)  # drawn below zero, however the engine signs it
    e_x = sorted(eq)
    d_x = sorted(dd)
    equity = svg.line_chart(
        [svg.Line("equity (P&L marked to mid, after fees)", e_x, [eq[t] for t in e_x], svg.BLUE)],
        y_label="equity",
        zero_line=True,
    )
    drawdown = svg.line_chart(
        [
            svg.Line(
                "drawdown from peak equity", d_x, [dd[t] for t in d_x], svg.RED, fill_to_zero=True
            )
        ],
        y_label="drawdown",
        height=170,
        include_zero=True,
    )
    return equity + drawdown


def _latency_section(run: RunOutput) -> str:
    by_kind: dict[str, list[float]] = defaultdict(list)
    by_kind_venue: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in run.latency:
        f = num(r.get("ms"))
        if f is None:
            continue
        by_kind[r.get("kind", "")].append(f)
        by_kind_venue[(r.get("kind", ""), r.get("venue", ""))].append(f)
    if not by_kind:
        return '<p class="empty">no latency samples</p>'
    out = []
    for i, (kind, vals) in enumerate(sorted(by_kind.items())):
        vals.sort()
        marks = [
            (f"p{int(q * 100)} {svg.fmt_num(quantile(vals, q))}", quantile(vals, q))
            for q in (0.5, 0.99)
        ]
        out.append(
            f"<h3>{escape(kind)} <small>{len(vals):,} samples</small></h3>"
            + svg.histogram(
                vals, x_label="ms", color=svg.PALETTE[i % len(svg.PALETTE)], marks=marks
            )
        )
    rows = []
    for (kind, venue), vals in sorted(by_kind_venue.items()):
        vals.sort()
        rows.append(
            [
                kind,
                venue,
                len(vals),
                quantile(vals, 0.5),
                quantile(vals, 0.9),
                quantile(vals, 0.99),
                vals[-1],
            ]
        )
    out.append(
        table(["kind", "venue", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows, numeric_from=2)
    )
    return "".join(out)


def _slippage_section(run: RunOutput) -> str:
    if not run.fills:
        return '<p class="empty">no fills</p>'
    slip = _col(run.fills, "slippage_bps")
    m1 = _col(run.fills, "markout_1s_bps")
    m5 = _col(run.fills, "markout_5s_bps")
    out = []
    for title, vals, color in (
        ("slippage vs mid at fill (bps)", slip, svg.ORANGE),
        ("markout +1 s (bps)", m1, svg.PURPLE),
        ("markout +5 s (bps)", m5, svg.BLUE),
    ):
        s = sorted(vals)
        marks = [("0", 0.0)] + (
            [(f"mean {svg.fmt_num(statistics.fmean(s))}", statistics.fmean(s))] if s else []
        )
        out.append(
            f"<h3>{escape(title)} <small>{len(s):,} fills</small></h3>"
            + svg.histogram(s, x_label="bps", color=color, bins=40, height=170, marks=marks)
        )
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in run.fills:
        groups[(r.get("venue", ""), (r.get("side") or "").lower(), r.get("liquidity", ""))].append(
            r
        )
    rows = []
    for (venue, side, liq), rs in sorted(groups.items()):
        rows.append(
            [
                venue,
                side,
                liq,
                len(rs),
                _mean(_col(rs, "slippage_bps")),
                _mean(_col(rs, "markout_1s_bps")),
                _mean(_col(rs, "markout_5s_bps")),
            ]
        )
    out.append(
        table(
            [
                "venue",
                "side",
                "liquidity",
                "fills",
                "mean slippage bps",
                "mean markout 1 s bps",
                "mean markout 5 s bps",
            ],
            rows,
            numeric_from=3,
        )
    )
    return "".join(out)


def _venue_section(run: RunOutput) -> str:
    venues = sorted(
        {r.get("venue", "") for r in run.orders} | {r.get("venue", "") for r in run.fills}
    )
    if not venues:
        return '<p class="empty">no orders</p>'
    rows = []
    for v in venues:
        orders = [r for r in run.orders if r.get("venue", "") == v]
        fills = [r for r in run.fills if r.get("venue", "") == v]
        status = Counter((r.get("status") or "").upper() for r in orders)
        qty = _col(fills, "quantity")
        notional = sum(
            (num(r.get("quantity")) or 0.0) * (num(r.get("price")) or 0.0) for r in fills
        )
        maker = sum(1 for r in fills if (r.get("liquidity") or "").lower() == "maker")
        acks = sorted(_col(orders, "ack_latency_ms"))
        rows.append(
            [
                v or "(router parent)",
                len(orders),
                status.get("FILLED", 0),
                status.get("REJECTED", 0),
                status.get("DENIED", 0),
                len(fills),
                sum(qty),
                notional,
                sum(_col(fills, "fee")),
                (100.0 * maker / len(fills)) if fills else None,
                _mean(_col(fills, "slippage_bps")),
                quantile(acks, 0.5) if acks else None,
            ]
        )
    return table(
        [
            "venue",
            "orders",
            "filled",
            "rejected",
            "denied",
            "fills",
            "quantity",
            "notional",
            "fees",
            "maker %",
            "mean slippage bps",
            "ack p50 ms",
        ],
        rows,
    )


def _reasons_section(run: RunOutput) -> str:
    out = []
    for key, status, title in (
        ("rejects", "REJECTED", "Rejects (the venue refused)"),
        ("denials", "DENIED", "Denials (our risk refused)"),
    ):
        counts = run.summary.get(key)
        if not isinstance(counts, dict):
            counts = Counter(
                r.get("reason", "") for r in run.orders if (r.get("status") or "").upper() == status
            )
        rows = sorted(counts.items(), key=lambda kv: (-int(num(kv[1]) or 0), kv[0]))
        out.append(f"<div><h3>{escape(title)}</h3>{table(['reason', 'orders'], rows)}</div>")
    for key, title, head in (
        ("in_doubt", "In doubt: how each ended", "outcome"),
        ("in_doubt_causes", "In doubt: causes", "cause"),
    ):
        counts = run.summary.get(key)
        if isinstance(counts, dict):
            rows = sorted(counts.items(), key=lambda kv: (-int(num(kv[1]) or 0), kv[0]))
            out.append(f"<div><h3>{escape(title)}</h3>{table([head, 'orders'], rows)}</div>")
    return f'<div class="two">{"".join(out)}</div>'


def _rows_section(rows: Sequence[Row], what: str) -> str:
    if not rows:
        return f'<p class="empty">no {what}</p>'
    headers = list(rows[0].keys())
    shown = rows[:MAX_TABLE_ROWS]
    note = (
        f'<p class="note">First {len(shown):,} of {len(rows):,} {what}; every row is in {what}.csv.</p>'
        if len(rows) > len(shown)
        else ""
    )
    times = [h for h in headers if h == "ts" or h.endswith("_ts")]
    body = table(
        headers,
        ([_clock(r.get(h, "")) if h in times else r.get(h, "") for h in headers] for r in shown),
        numeric_from=1,
    )
    return f'{note}<div class="scroll">{body}</div>'


def _clock(v: str) -> str:
    """A timestamp cell as UTC time of day with milliseconds (the span is minutes to hours)."""
    f = num(v)
    if f is None:
        return v
    return time.strftime("%H:%M:%S", time.gmtime(f)) + f".{int(f % 1 * 1000):03d}"


def _details_section(run: RunOutput) -> str:
    rows = []
    for k, v in run.summary.items():
        if isinstance(v, dict):
            for k2, v2 in v.items():
                rows.append([f"{k}.{k2}", v2])
        else:
            rows.append([k, v])
    return table(["field", "value"], rows)


# -- the page -----------------------------------------------------------------------------

CSS = """
:root{--fg:#1c2330;--muted:#5b6474;--line:#e2e6ee;--bg:#f6f7fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);background:var(--bg)}
header{background:#162033;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:20px;font-weight:600}
header p{margin:4px 0 0;color:#b8c2d6;font-size:13px}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:8px 28px;z-index:2;font-size:13px}
nav a{margin-right:14px;color:#2f6fdf;text-decoration:none}
main{max-width:1100px;margin:0 auto;padding:8px 20px 40px}
section{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:16px;margin:0 0 8px}
h3{font-size:13px;margin:12px 0 4px;color:var(--muted);font-weight:600}
h3 small{font-weight:400}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.card .k{font-size:12px;color:var(--muted)}
.card .v{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums;overflow-wrap:anywhere}
.pos{color:#1a9e55}.neg{color:#d2372d}
.two{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:12px}
table{border-collapse:collapse;width:100%;font-size:12.5px;font-variant-numeric:tabular-nums;margin-top:6px}
th,td{padding:4px 8px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{background:#f0f2f6;cursor:pointer;user-select:none;position:sticky;top:0}
th.n,td.n{text-align:right}
.scroll{max-height:480px;overflow:auto}
.empty,.note{color:var(--muted);font-style:italic}
.problems{background:#fff6e5;border-color:#f0c36d}
"""

SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th,i){
  th.addEventListener('click',function(){
    var tb=th.closest('table').tBodies[0],asc=th.dataset.asc!=='1';
    th.closest('tr').querySelectorAll('th').forEach(function(h){delete h.dataset.asc});
    th.dataset.asc=asc?'1':'0';
    var rows=Array.from(tb.rows);
    rows.sort(function(a,b){
      var x=a.cells[i],y=b.cells[i],p=x.dataset.v,q=y.dataset.v,r;
      r=(p!==undefined&&q!==undefined)?(parseFloat(p)-parseFloat(q)):x.textContent.localeCompare(y.textContent);
      return asc?r:-r;});
    rows.forEach(function(r){tb.appendChild(r)});
  });
});
"""


def _span_text(run: RunOutput) -> str:
    ts = _col(run.series, "ts") or _col(run.fills, "ts")
    if not ts:
        return ""
    lo, hi = min(ts), max(ts)
    start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(lo))
    return f"market time {start} UTC, {hi - lo:,.1f} s"


def render(run: RunOutput) -> str:
    """The report page as a string."""
    by_symbol = _series_by_symbol(run)
    title = f"Backtest report: {run.out_dir.name}"
    subtitle = " · ".join(
        x
        for x in (
            _span_text(run),
            ", ".join(s for s in by_symbol if s),
            f"written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        )
        if x
    )
    sections = [
        ("summary", "Summary", _headline(run)),
        ("price", "Price and the strategy's fills", _price_section(run, by_symbol)),
        ("position", "Position", _position_section(by_symbol)),
        ("equity", "Equity and drawdown", _equity_section(run)),
        ("latency", "Latency", _latency_section(run)),
        ("slippage", "Slippage and markouts", _slippage_section(run)),
        ("venues", "By venue", _venue_section(run)),
        ("reasons", "Rejects, denials, in doubt", _reasons_section(run)),
        ("orders", "Orders", _rows_section(run.orders, "orders")),
        ("fills", "Fills", _rows_section(run.fills, "fills")),
        ("details", "Run details", _details_section(run)),
    ]
    problems = ""
    if run.problems:
        items = "".join(f"<li>{escape(p)}</li>" for p in run.problems)
        problems = f'<section class="problems"><h2>Missing or unreadable inputs</h2><ul>{items}</ul></section>'
    nav = "".join(f'<a href="#{sid}">{escape(name)}</a>' for sid, name, _ in sections)
    body = "".join(
        f'<section id="{sid}"><h2>{escape(name)}</h2>{content}</section>'
        for sid, name, content in sections
    )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}{svg.CSS}</style></head><body>"
        f"<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>"
        f"<nav>{nav}</nav><main>{problems}{body}</main>"
        f"<script>{SORT_JS}</script></body></html>\n"
    )
