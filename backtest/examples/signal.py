"""A simple signal strategy: a fast and a slow exponential average of the mid; when the
fast crosses above the slow it goes long ``qty`` at market, below it goes short (or
flat with ``long_only=1``). The averages are updated at most every ``step_ms``.

    oms backtest --data rec.gz --strategy backtest.examples.signal:EmaCross \\
        --param fast_s=5 --param slow_s=30 --param qty=0.01
"""

from __future__ import annotations

from decimal import Decimal

from backtest import Context, Strategy
from backtest.model import BookView


class EmaCross(Strategy):
    def on_start(self, ctx: Context) -> None:
        self.qty = self.param("qty", Decimal("0.01"))
        self.fast_s = self.param("fast_s", 5.0)
        self.slow_s = self.param("slow_s", 30.0)
        self.step_ns = int(self.param("step_ms", 100) * 1_000_000)
        self.long_only = self.param("long_only", False)
        self.symbol = self.params.get("symbol")
        self.fast: float | None = None
        self.slow: float | None = None
        self.last_ns = 0
        self.started_ns: int | None = None
        self.state = 0  # -1 short, 0 flat, +1 long

    def on_book(self, ctx: Context, book: BookView) -> None:
        if self.symbol is None:
            self.symbol = book.symbol
        if book.symbol != self.symbol or ctx.now_ns - self.last_ns < self.step_ns:
            return
        mid = book.mid()
        if mid is None or book.state != "LIVE":
            return
        dt = (ctx.now_ns - self.last_ns) / 1e9 if self.last_ns else 0.0
        self.last_ns = ctx.now_ns
        if self.started_ns is None:
            self.started_ns = ctx.now_ns
        x = float(mid)
        if self.fast is None or self.slow is None:
            self.fast = self.slow = x
            return
        self.fast += (x - self.fast) * min(1.0, dt / self.fast_s)
        self.slow += (x - self.slow) * min(1.0, dt / self.slow_s)
        if ctx.now_ns - self.started_ns < self.slow_s * 1e9:
            return  # warming up
        want = 1 if self.fast > self.slow else (0 if self.long_only else -1)
        if want == self.state or ctx.open_orders(book.symbol):
            return
        target = self.qty * want
        delta = target - ctx.position(book.symbol)
        if delta:
            side = "buy" if delta > 0 else "sell"
            ctx.submit(
                symbol=book.symbol, side=side, type="market", quantity=abs(delta), venue=book.venue
            )
        self.state = want
