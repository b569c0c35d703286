"""A TWAP executor of one parent order: ``quantity`` of ``symbol`` bought (or sold) in
``slices`` equal child orders spread evenly over ``minutes``, each a marketable limit
``max_slippage_bp`` beyond the touch (IOC), what a slice misses carried into the next.
The slices name the parent (``parent=``), so orders.csv and the report group them.

    oms backtest --data rec.gz --strategy backtest.examples.twap:Twap \\
        --param side=buy --param quantity=0.5 --param minutes=4 --param slices=24
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from backtest import Context, Strategy
from backtest.model import BookView, Fill

NS = 1_000_000_000


class Twap(Strategy):
    def on_start(self, ctx: Context) -> None:
        self.side = self.params.get("side", "buy")
        self.total = self.param("quantity", Decimal("0.1"))
        self.slices = self.param("slices", 12)
        self.span_ns = int(self.param("minutes", 5.0) * 60 * NS)
        self.max_slip = self.param("max_slippage_bp", Decimal("5")) / Decimal(10_000)
        self.lot = self.param("lot", Decimal("0.00001"))
        self.symbol = self.params.get("symbol")
        self.venue = self.params.get("venue")  # None: the router chooses (several venues)
        self.parent = f"twap-{self.side}-{self.total}"
        self.start_ns: int | None = None
        self.sent = 0
        self.filled = Decimal(0)
        self.notional = Decimal(0)
        self.arrival_mid: Decimal | None = None

    def on_book(self, ctx: Context, book: BookView) -> None:
        if self.symbol is None:
            self.symbol = book.symbol
        if book.symbol != self.symbol or book.state != "LIVE" or self.sent >= self.slices:
            return
        if self.venue is not None and book.venue != self.venue:
            return
        if self.start_ns is None:
            self.start_ns = ctx.now_ns
            self.arrival_mid = book.mid()
        due = self.start_ns + self.sent * self.span_ns // self.slices
        if ctx.now_ns < due:
            return
        self.sent += 1
        left_slices = self.slices - self.sent + 1
        qty = ((self.total - self.filled) / left_slices).quantize(self.lot, rounding=ROUND_DOWN)
        if self.sent == self.slices:
            qty = (self.total - self.filled).quantize(self.lot, rounding=ROUND_DOWN)
        if qty <= 0:
            return
        touch = book.best_ask() if self.side == "buy" else book.best_bid()
        if touch is None:
            return
        limit = (
            touch[0] * (1 + self.max_slip) if self.side == "buy" else touch[0] * (1 - self.max_slip)
        )
        ctx.submit(
            symbol=book.symbol,
            side=self.side,
            type="limit",
            quantity=qty,
            price=limit.quantize(
                Decimal("0.01"), rounding=ROUND_DOWN if self.side == "buy" else "ROUND_UP"
            ),
            time_in_force="IOC",
            venue=self.venue,
            parent=self.parent,
        )

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        self.filled += fill.quantity
        self.notional += fill.quantity * fill.price

    def on_stop(self, ctx: Context) -> None:
        if self.filled and self.arrival_mid:
            avg = self.notional / self.filled
            sign = 1 if self.side == "buy" else -1
            cost = (avg - self.arrival_mid) / self.arrival_mid * 10_000 * sign
            ctx.log(
                f"TWAP {self.parent}: filled {self.filled} of {self.total} at {avg:.2f}, {cost:.2f} bp vs arrival mid"
            )
        else:
            ctx.log(f"TWAP {self.parent}: filled {self.filled} of {self.total}")
