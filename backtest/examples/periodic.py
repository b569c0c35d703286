"""Trades a small quantity at market every ``seconds`` of market time, buying and selling in
turn (``--param seconds=1 qty=0.001 step=0.0001 orders=10``); the k-th order is for
``qty + k * step``, so no two are identical (the risk engine's duplicate-order check).

It only reads the clock and submits, so the same class runs in the backtester and, through
a thin adapter, against the live OMS (tests/system/test_replay_vs_backtest.py compares
the two on one recording).
"""

from __future__ import annotations

from decimal import Decimal

from backtest import Context, Strategy
from backtest.engine import BookView


class Periodic(Strategy):
    def on_start(self, ctx: Context) -> None:
        self.every: float = self.param("seconds", 1.0)
        self.qty: Decimal = self.param("qty", Decimal("0.001"))
        self.step: Decimal = self.param("step", Decimal("0.0001"))
        self.orders: int = self.param("orders", 10)
        self.symbol = self.params.get("symbol")
        self.venue = self.params.get("venue")
        self.next_at: float | None = None
        self.sent: list[str] = []

    def on_book(self, ctx: Context, book: BookView | None) -> None:
        if self.next_at is None:
            self.next_at = ctx.now + self.every
            return
        if ctx.now < self.next_at or len(self.sent) >= self.orders:
            return
        k = len(self.sent)
        self.next_at += self.every
        symbol = self.symbol or (book.symbol if book is not None else None)
        venue = self.venue or (book.venue if book is not None else None)
        assert symbol is not None, "param symbol is needed without a book"
        self.sent.append(
            ctx.submit(
                symbol=symbol,
                side="buy" if k % 2 == 0 else "sell",
                type="market",
                quantity=self.qty + k * self.step,
                venue=venue,
            )
        )
