"""What a run measured: counters, fills with slippage and markouts, latency samples, the
position/equity series, and the summary (pure; ``backtest.results`` writes the files).

Conventions: money in the quote currency; ``pnl_realized`` is the positions' realized
P&L minus fees, ``pnl_total`` adds the unrealized P&L at the last mid; slippage is the
fill price against the venue's mid when it executed, in basis points, positive when it
cost us; a markout is the mid 1 s (5 s) after the execution against the fill price, in
basis points, positive when the market moved our way.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from backtest.config import BacktestConfig
from backtest.model import Fill, Order
from backtest.venue import Execution
from orders.domain.positions import PositionState


class Run(Protocol):
    """What the metrics read of the run (``backtest.engine.Backtest``)."""

    @property
    def now_ns(self) -> int: ...
    @property
    def positions(self) -> Mapping[str, PositionState]: ...
    @property
    def sources(self) -> Mapping[str, Mapping[str, Any]]: ...
    @property
    def venues(self) -> Mapping[str, Any]: ...
    def mark(self, symbol: str) -> Decimal | None: ...


ZERO = Decimal(0)
NS = 1_000_000_000
SERIES_MAX = 5_000
LATENCY_MAX = 20_000
MAX_STRATEGY_ERRORS = 100
MAX_LOG = 1_000
VOL_STEP_NS = NS  # the volatility measure: the mid's move over the last second
MID_STEP_NS = NS // 100  # markouts are taken within 10 ms of their time


@dataclass(slots=True)
class FillRow:
    fill: Fill
    markout_1s: float | None = None
    markout_5s: float | None = None

    @property
    def slippage_bps(self) -> float | None:
        f = self.fill
        if f.mid is None or not f.mid:
            return None
        sign = 1 if f.side == "buy" else -1
        return float((f.price - f.mid) / f.mid) * 1e4 * sign


class Samples:
    """Latency samples of one kind, thinned by a doubling stride past ``cap`` (deterministic)."""

    __slots__ = ("cap", "n", "rows", "stride")

    def __init__(self, cap: int) -> None:
        self.cap, self.n, self.stride = cap, 0, 1
        self.rows: list[tuple[str, float]] = []

    def add(self, venue: str, ms: float) -> None:
        self.n += 1
        if self.n % self.stride:
            return
        self.rows.append((venue, ms))
        if len(self.rows) >= self.cap:
            self.rows = self.rows[::2]
            self.stride *= 2

    def p50(self, venue: str | None = None) -> float | None:
        values = sorted(ms for v, ms in self.rows if venue is None or v == venue)
        if not values:
            return None
        return round(values[len(values) // 2], 3)


class Metrics:
    def __init__(self, config: BacktestConfig) -> None:
        self.config = config
        self.events = 0
        self.start_ns: int | None = None
        self.end_ns = 0
        self.orders: list[Order] = []
        self.fills: list[FillRow] = []
        self.denials: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()
        self.in_doubt: Counter[str] = Counter()  # how each in-doubt episode was resolved
        self.in_doubt_causes: Counter[str] = Counter()  # 5xx, timeout, outage
        self.reports_ignored: Counter[str] = Counter()
        self.late_fills = 0
        self.kill_switch: list[dict[str, Any]] = []
        self.routes: list[dict[str, Any]] = []
        self.outages: list[dict[str, Any]] = []
        self.strategy_errors: list[tuple[int, str]] = []
        self.strategy_error_count = 0
        self.logs: list[tuple[int, str]] = []
        self.latency = {kind: Samples(LATENCY_MAX // 3) for kind in ("feed", "ack", "fill")}
        self.executions: dict[str, tuple[int, Decimal | None]] = {}  # trade id -> (ns, mid)
        self.markouts: list[tuple[int, int, int]] = []  # (due ns, fill index, horizon s)
        self.series: list[tuple[int, str, Decimal | None, Decimal, Decimal, Decimal]] = []
        self.series_step = NS // 4
        self.symbols: list[str] = []
        self.next_sample_ns = 0
        self.peak: Decimal | None = None
        self.max_drawdown = ZERO
        self.vol: dict[str, float] = {}
        self.next_mid_ns = 0
        self.vol_anchor: dict[str, tuple[int, Decimal]] = {}
        self.timing: dict[str, float] = {}

    # ------------------------------------------------------------------ clock

    def start(self, t: int) -> None:
        self.start_ns = t
        self.next_sample_ns = t

    # ------------------------------------------------------------------ orders and fills

    def order_created(self, order: Order) -> None:
        self.orders.append(order)

    def executed(self, venue: str, ex: Execution, mid: Decimal | None) -> None:
        self.executions[ex.trade.trade_id] = (ex.ts_ns, mid)

    def execution_info(self, trade_id: str) -> tuple[int | None, Decimal | None]:
        return self.executions.get(trade_id, (None, None))

    def fill(self, bt: Run, fill: Fill, *, late: bool) -> None:
        self.fills.append(FillRow(fill))
        if late:
            self.late_fills += 1
        self.latency["fill"].add(fill.venue, (fill.ts_ns - fill.exec_ns) / 1e6)
        index = len(self.fills) - 1
        heapq.heappush(self.markouts, (fill.exec_ns + NS, index, 1))
        heapq.heappush(self.markouts, (fill.exec_ns + 5 * NS, index, 5))
        self._drawdown(bt)

    def ack(self, venue: str, ns: int) -> None:
        self.latency["ack"].add(venue, ns / 1e6)

    def feed_latency(self, venue: str, ns: int) -> None:
        self.latency["feed"].add(venue, ns / 1e6)

    def strategy_error(self, ts: int, message: str) -> bool:
        """Count a strategy error; True when there were too many to go on."""
        self.strategy_error_count += 1
        if len(self.strategy_errors) < MAX_STRATEGY_ERRORS:
            self.strategy_errors.append((ts, message))
        return self.strategy_error_count >= MAX_STRATEGY_ERRORS

    def log(self, ts: int, message: str) -> None:
        if len(self.logs) < MAX_LOG:
            self.logs.append((ts, message))

    # ------------------------------------------------------------------ market

    def on_mid(self, bt: Run, symbol: str, ts: int) -> None:
        """After a book change (at most every ``MID_STEP_NS``): due markouts, the
        volatility measure."""
        self.next_mid_ns = ts + MID_STEP_NS
        markouts = self.markouts
        if markouts and markouts[0][0] <= ts:
            while markouts and markouts[0][0] <= ts:
                _, index, horizon = heapq.heappop(markouts)
                row = self.fills[index]
                f = row.fill
                rt = bt.venues.get(f.venue)
                mid = None if rt is None else rt.venue.mid(f.symbol)
                if mid is not None:
                    sign = 1 if f.side == "buy" else -1
                    value = round(float((mid - f.price) / f.price) * 1e4 * sign, 4)
                    if horizon == 1:
                        row.markout_1s = value
                    else:
                        row.markout_5s = value
        anchor = self.vol_anchor.get(symbol)
        if anchor is None or ts - anchor[0] >= VOL_STEP_NS:
            mid = bt.mark(symbol)
            if mid is not None and mid > 0:
                if anchor is not None:
                    self.vol[symbol] = abs(float((mid - anchor[1]) / anchor[1])) * 1e4
                self.vol_anchor[symbol] = (ts, mid)

    def vol_bp(self, symbol: str) -> float:
        return self.vol.get(symbol, 0.0)

    # ------------------------------------------------------------------ P&L

    def pnl_realized(self, bt: Run) -> Decimal:
        return sum((p.realized_pnl - p.fees for p in bt.positions.values()), ZERO)

    def pnl_total(self, bt: Run, marks: dict[str, Decimal | None] | None = None) -> Decimal:
        total = ZERO
        for symbol, p in bt.positions.items():
            total += p.realized_pnl - p.fees
            if p.quantity:
                mark = marks[symbol] if marks is not None and symbol in marks else bt.mark(symbol)
                unrealized = p.unrealized(mark)
                total += unrealized or ZERO
        return total

    def _drawdown(self, bt: Run) -> Decimal:
        equity = self.config.start_balance + self.pnl_total(bt)
        if self.peak is None or equity > self.peak:
            self.peak = equity
        drawdown = self.peak - equity
        if drawdown > self.max_drawdown:
            self.max_drawdown = drawdown
        return drawdown

    def sample(self, bt: Run, *, force: bool = False) -> None:
        """One row per symbol of the series (every ``series_step``, thinned past the cap)."""
        now = bt.now_ns
        self.end_ns = max(self.end_ns, now)
        if not force and now < self.next_sample_ns:
            return
        self.next_sample_ns = now + self.series_step
        symbols = self.symbols
        if len(symbols) != sum(len(books) for books in bt.sources.values()):
            symbols = self.symbols = sorted({s for books in bt.sources.values() for s in books})
        marks = {symbol: bt.mark(symbol) for symbol in symbols}
        equity = self.config.start_balance + self.pnl_total(bt, marks)
        if self.peak is None or equity > self.peak:
            self.peak = equity
        drawdown = self.peak - equity
        if drawdown > self.max_drawdown:
            self.max_drawdown = drawdown
        positions = bt.positions
        for symbol in symbols:
            pos = positions.get(symbol)
            self.series.append(
                (
                    now,
                    symbol,
                    marks[symbol],
                    ZERO if pos is None else pos.quantity,
                    equity,
                    drawdown,
                )
            )
        if len(self.series) > 2 * SERIES_MAX:
            self.series = _thin(self.series, len(symbols))
            self.series_step *= 2

    # ------------------------------------------------------------------ summary

    def summary(self, bt: Run) -> dict[str, Any]:
        fills = [r.fill for r in self.fills]
        volume = sum((f.quantity for f in fills), ZERO)
        notional = sum((f.quantity * f.price for f in fills), ZERO)
        fees = sum((f.fee for f in fills), ZERO)
        orders = self.orders
        venues: dict[str, dict[str, Any]] = {}
        for name in sorted(bt.venues):
            vf = [f for f in fills if f.venue == name]
            vo = [o for o in orders if o.venue == name]
            venues[name] = {
                "orders": len(vo),
                "fills": len(vf),
                "volume": _s(sum((f.quantity for f in vf), ZERO)),
                "notional": _s(sum((f.quantity * f.price for f in vf), ZERO)),
                "fees": _s(sum((f.fee for f in vf), ZERO)),
                "maker_fills": sum(1 for f in vf if f.liquidity == "maker"),
                "rejected": sum(1 for o in vo if o.status == "REJECTED"),
                "ack_p50_ms": self.latency["ack"].p50(name),
            }
        statuses = Counter(o.status for o in orders)
        unresolved = sum(
            1
            for o in orders
            if not o.is_terminal and o.status in ("SUBMITTED", "PENDING_CANCEL", "PENDING_REPLACE")
        )
        in_doubt = dict(sorted(self.in_doubt.items()))
        in_doubt["unresolved"] = sum(1 for o in orders if o.in_doubt and not o.is_terminal)
        slips = [s for s in (r.slippage_bps for r in self.fills) if s is not None]
        return {
            "events": self.events,
            "events_per_s": self.timing.get("events_per_s"),
            "duration_s": round((self.end_ns - (self.start_ns or self.end_ns)) / NS, 3),
            "seed": self.config.seed,
            "queue_model": self.config.queue_model,
            "router": self.config.router,
            "orders": len(orders),
            "orders_by_status": dict(sorted(statuses.items())),
            "orders_pending_at_end": unresolved,
            "fills": len(fills),
            "volume": _s(volume),
            "notional": _s(notional),
            "fees": _s(fees),
            "pnl_realized": _s(self.pnl_realized(bt)),
            "pnl_total": _s(self.pnl_total(bt)),
            "max_drawdown": _s(self.max_drawdown),
            "final_position": {s: _s(p.quantity) for s, p in sorted(bt.positions.items())},
            "denials": dict(sorted(self.denials.items())),
            "rejects": dict(sorted(self.rejects.items())),
            "in_doubt": in_doubt,
            "in_doubt_total": sum(self.in_doubt_causes.values()),
            "in_doubt_causes": dict(sorted(self.in_doubt_causes.items())),
            "reports_ignored": dict(sorted(self.reports_ignored.items())),
            "late_fills": self.late_fills,
            "kill_switch": self.kill_switch,
            "outages": self.outages,
            "latency": {
                "feed_p50_ms": self.latency["feed"].p50(),
                "ack_p50_ms": self.latency["ack"].p50(),
                "fill_p50_ms": self.latency["fill"].p50(),
            },
            "slippage_bps_mean": round(sum(slips) / len(slips), 4) if slips else None,
            "venues": venues,
            "data_issues": {},
            "strategy_errors": self.strategy_error_count,
            "strategy_error_messages": [m for _, m in self.strategy_errors[:20]],
            "timing": dict(self.timing),
        }


def _s(value: Decimal) -> str:
    """A decimal as plain text (no exponent), at most 8 places."""
    q = value.quantize(Decimal("0.00000001")) if value.as_tuple().exponent < -8 else value  # type: ignore[operator]
    text = format(q, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _thin(rows: list[Any], per_step: int) -> list[Any]:
    """Every other step of the series (a step is ``per_step`` rows, one per symbol)."""
    step = max(1, per_step)
    out: list[Any] = []
    for i in range(0, len(rows), 2 * step):
        out.extend(rows[i : i + step])
    return out
