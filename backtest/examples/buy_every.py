"""Buys a small quantity at market every ``n`` recorded trades (``--param n=50 qty=0.001``):
the simplest strategy there is, used by the tests and the benchmark."""

from __future__ import annotations

from decimal import Decimal

from backtest import Context, Strategy
from backtest.model import TradeView


class BuyEvery(Strategy):
    def on_start(self, ctx: Context) -> None:
        self.n = self.param("n", 50)
        self.qty = self.param("qty", Decimal("0.001"))
        self.symbol = self.params.get("symbol")
        self.max_orders = self.param("max_orders", 1_000_000)
        self.seen = 0
        self.sent = 0

    def on_trade(self, ctx: Context, trade: TradeView) -> None:
        if self.symbol is not None and trade.symbol != self.symbol:
            return
        self.seen += 1
        if self.seen % self.n or self.sent >= self.max_orders:
            return
        self.sent += 1
        ctx.submit(
            symbol=trade.symbol, side="buy", type="market", quantity=self.qty, venue=trade.venue
        )


class Idle(Strategy):
    """Does nothing: the engine's cost of replaying the market alone."""
