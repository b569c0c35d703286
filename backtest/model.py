"""The values of a backtest run: orders as the OMS holds them, fills, what the strategy
is shown of trades and books, and the run's errors (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from backtest.venue import SimVenue
from orders.domain import lifecycle as lc

ZERO = Decimal(0)


class BacktestError(Exception):
    """The run cannot go on (bad strategy, no data); the message says why."""


@dataclass(slots=True)
class Order:
    """One order as the OMS holds it (``state`` is the lifecycle's)."""

    client_order_id: str
    parent: str | None
    venue: str | None
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: str
    state: lc.OrderState
    created_ns: int
    reason: str = ""
    ack_ns: int | None = None
    done_ns: int | None = None
    trade_ids: set[str] = field(default_factory=set)
    children: list[str] = field(default_factory=list)
    in_doubt: bool = False
    sent_ns: int = 0
    last_arrival_ns: int = 0  # requests reach the venue in order
    last_answer_ns: int = 0  # answers come back in order
    route_rounds: int = 0
    fees: Decimal = ZERO

    @property
    def status(self) -> str:
        return self.state.status.value

    @property
    def filled_quantity(self) -> Decimal:
        return self.state.filled_quantity

    @property
    def leaves_quantity(self) -> Decimal:
        return self.state.leaves_quantity

    @property
    def average_price(self) -> Decimal | None:
        return self.state.average_price

    @property
    def is_terminal(self) -> bool:
        return self.state.is_terminal


@dataclass(frozen=True, slots=True)
class Fill:
    ts_ns: int  # when the OMS learned of it
    exec_ns: int  # when the venue executed it
    client_order_id: str
    parent: str | None
    venue: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    liquidity: str  # maker | taker
    mid: Decimal | None  # the venue's mid when it executed


@dataclass(frozen=True, slots=True)
class TradeView:
    ts_ns: int
    venue: str
    symbol: str
    price: Decimal
    quantity: Decimal
    side: str | None  # the aggressor's


class BookView:
    """A venue's book for one symbol as the strategy sees it (after the feed latency)."""

    __slots__ = ("_v", "symbol", "venue")

    def __init__(self, view: SimVenue, symbol: str) -> None:
        self._v, self.venue, self.symbol = view, view.name, symbol

    @property
    def state(self) -> str:
        return self._v.state(self.symbol).value

    @property
    def ts_ns(self) -> int:
        src = self._v.sources.get(self.symbol)
        return 0 if src is None else src.ts_ns

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        return self._v.best_bid(self.symbol)

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        return self._v.best_ask(self.symbol)

    def mid(self) -> Decimal | None:
        return self._v.mid(self.symbol)

    def bids(self, n: int = 10) -> list[tuple[Decimal, Decimal]]:
        return self._v.depth(self.symbol, True, n)

    def asks(self, n: int = 10) -> list[tuple[Decimal, Decimal]]:
        return self._v.depth(self.symbol, False, n)


def _dec(name: str, value: Any) -> Decimal:
    try:
        out = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise OrderInputError(f"{name}: {value!r} is not a number") from None
    if not out.is_finite() or out <= 0:
        raise OrderInputError(f"{name}: {value!r} must be a positive number")
    return out


class OrderInputError(ValueError):
    """A strategy asked for an order that cannot exist (bad side, quantity...)."""
