"""A market maker quoting around the mid.

Every ``refresh_ms`` it puts a bid ``half_spread_bp`` below the mid and an ask as far
above, ``qty`` each, skewed against its inventory (``skew_bp`` per unit of position), and
stops quoting the side that would take the position past ``max_position``. Quotes that
moved are amended (a cancel-replace at the venue: the queue position is lost), not
canceled and sent again.

    oms backtest --data rec.gz --strategy backtest.examples.market_maker:MarketMaker \\
        --param qty=0.01 --param half_spread_bp=1.5
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from backtest import Context, Strategy
from backtest.model import BookView


class MarketMaker(Strategy):
    def on_start(self, ctx: Context) -> None:
        self.qty = self.param("qty", Decimal("0.01"))
        self.half_spread = self.param("half_spread_bp", Decimal("2")) / Decimal(10_000)
        self.skew = self.param("skew_bp", Decimal("1")) / Decimal(10_000)
        self.max_position = self.param("max_position", Decimal("0.1"))
        self.refresh_ns = int(self.param("refresh_ms", 250) * 1_000_000)
        self.tick = self.param("tick", Decimal("0.01"))
        self.symbol = self.params.get("symbol")
        self.quotes: dict[str, str | None] = {"buy": None, "sell": None}
        self.next_ns = 0

    def on_book(self, ctx: Context, book: BookView) -> None:
        if ctx.now_ns < self.next_ns or book.state != "LIVE":
            return
        if self.symbol is None:
            self.symbol = book.symbol
        if book.symbol != self.symbol:
            return
        mid = book.mid()
        if mid is None:
            return
        self.next_ns = ctx.now_ns + self.refresh_ns
        position = ctx.position(book.symbol)
        centre = mid * (1 - self.skew * position / self.qty)
        targets = {
            "buy": (centre * (1 - self.half_spread) / self.tick).to_integral_value(ROUND_FLOOR)
            * self.tick,
            "sell": (centre * (1 + self.half_spread) / self.tick).to_integral_value(ROUND_CEILING)
            * self.tick,
        }
        for side, price in targets.items():
            allowed = (
                position + self.qty <= self.max_position
                if side == "buy"
                else position - self.qty >= -self.max_position
            )
            cid = self.quotes[side]
            order = ctx.order(cid) if cid else None
            live = order is not None and not order.is_terminal
            if not allowed:
                if live and order is not None and order.status in ("ACCEPTED", "PARTIALLY_FILLED"):
                    ctx.cancel(order.client_order_id)
                continue
            if not live:
                self.quotes[side] = ctx.submit(
                    symbol=book.symbol,
                    side=side,
                    type="limit",
                    quantity=self.qty,
                    price=price,
                    venue=book.venue,
                )
            elif (
                order is not None
                and order.price != price
                and order.status in ("ACCEPTED", "PARTIALLY_FILLED")
            ):
                ctx.amend(order.client_order_id, price=price)
