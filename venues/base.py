"""The venue adapter contract.

Every venue (a ccxt exchange, the built-in simulated exchange) is driven through a
``VenueAdapter``. The OMS never talks to a venue library directly: tasks call an
adapter, and the adapter turns the venue's answers and errors into the plain values
and the four error classes below.

Errors are normalised so the pipeline can act on them without knowing the venue:

=====================  ==================================================  ====================
error                  meaning                                             what the OMS does
=====================  ==================================================  ====================
``VenueRejected``      the venue definitely refused the request            order -> REJECTED
``VenueInDoubt``       timeout, 5xx, connection lost: it may have acted    ask the venue later
``VenueRateLimited``   429/418; ``retry_after`` seconds to wait             back off, retry
``VenueOrderNotFound``  the venue does not know the order                  depends on the call
``VenueUnavailable``   not sent: the venue's circuit breaker is open       new orders REJECTED
=====================  ==================================================  ====================

Nothing here imports Django: adapters run in workers, in the venue stream process and
in the backtester.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any


class VenueError(Exception):
    """Base class of the normalised venue errors. ``reason`` is safe to show a user."""

    def __init__(self, reason: str, *, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class VenueRejected(VenueError):
    """A definite refusal (insufficient balance, filter failure, bad symbol...)."""


class VenueInDoubt(VenueError):
    """The request may or may not have been executed (timeout, 5xx, dropped connection)."""


class VenueRateLimited(VenueError):
    """The venue asked us to slow down (429) or banned us for a while (418)."""

    def __init__(
        self, reason: str, *, retry_after: float | None = None, banned: bool = False, code=None
    ) -> None:
        super().__init__(reason, code=code)
        self.retry_after = retry_after
        self.banned = banned


class VenueOrderNotFound(VenueError):
    """The venue does not know this order (never received, or purged)."""


class VenueUnavailable(VenueError):
    """Not sent: the venue's circuit breaker is open. Safe to treat as never sent."""


class VenueOrderStatus(StrEnum):
    """Order status as reported by a venue, in OMS vocabulary."""

    NEW = "NEW"  # accepted, working, nothing filled
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"  # includes an IOC/FOK remainder that did not trade


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str  # unified, e.g. "BTC/USDT"
    side: str  # "buy" | "sell"
    type: str  # "limit" | "market"
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: str = "GTC"  # GTC | IOC | FOK

    def as_payload(self) -> dict[str, str | None]:
        """Plain JSON values (decimals as strings), for a task message."""
        return {
            "client_order_id": self.client_order_id,
            "symbol": self.symbol,
            "side": self.side,
            "type": self.type,
            "quantity": str(self.quantity),
            "price": None if self.price is None else str(self.price),
            "time_in_force": self.time_in_force,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> OrderRequest:
        """Inverse of ``as_payload``; ``ValueError`` (or ``KeyError``) if malformed."""
        try:
            price = payload["price"]
            return cls(
                client_order_id=str(payload["client_order_id"]),
                symbol=str(payload["symbol"]),
                side=str(payload["side"]),
                type=str(payload["type"]),
                quantity=Decimal(payload["quantity"]),
                price=None if price is None else Decimal(price),
                time_in_force=str(payload["time_in_force"]),
            )
        except ArithmeticError as exc:  # decimal.InvalidOperation
            raise ValueError(f"bad order request payload: {exc!r}") from exc


@dataclass(frozen=True)
class VenueTrade:
    trade_id: str
    venue_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal = Decimal(0)
    fee_currency: str | None = None
    is_maker: bool | None = None
    timestamp: datetime | None = None
    client_order_id: str | None = None


@dataclass(frozen=True)
class VenueOrder:
    venue_order_id: str
    client_order_id: str | None
    symbol: str
    side: str
    type: str
    status: VenueOrderStatus
    quantity: Decimal
    price: Decimal | None
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None
    timestamp: datetime | None = None
    trades: tuple[VenueTrade, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status in (VenueOrderStatus.NEW, VenueOrderStatus.PARTIALLY_FILLED)


@dataclass(frozen=True)
class BookLevel:
    price: Decimal
    quantity: Decimal


@dataclass(frozen=True)
class OrderBook:
    symbol: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    timestamp: datetime | None = None

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        if self.bids and self.asks:
            return (self.bids[0].price + self.asks[0].price) / 2
        return None


@dataclass(frozen=True)
class Balance:
    asset: str
    free: Decimal
    used: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.used


@dataclass(frozen=True)
class Capabilities:
    native_amend: bool = False  # False: amend is a race-safe cancel-replace
    cancel_all: bool = False  # one call cancels every open order of a symbol
    order_stream: bool = False  # pushes order/trade updates (else poll)
    fetch_by_client_order_id: bool = True
    markets: tuple[str, ...] = field(default_factory=tuple)


class VenueAdapter(abc.ABC):
    """What every venue implements. All methods are synchronous and may block on I/O.

    Implementations raise only the ``VenueError`` subclasses above for venue problems.
    """

    name: str

    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    def submit_order(self, request: OrderRequest) -> VenueOrder:
        """Send a new order using ``request.client_order_id`` as the venue's client id."""

    @abc.abstractmethod
    def cancel_order(
        self, *, symbol: str, client_order_id: str, venue_order_id: str | None = None
    ) -> VenueOrder:
        """Cancel one order. ``VenueOrderNotFound`` if the venue does not know it."""

    @abc.abstractmethod
    def amend_order(
        self,
        *,
        symbol: str,
        client_order_id: str,
        venue_order_id: str | None,
        new_client_order_id: str,
        side: str,
        quantity: Decimal,
        price: Decimal | None,
    ) -> VenueOrder:
        """Change quantity/price. Without native amend: cancel, then (only if the cancel
        succeeded, so the old order can no longer fill) place ``new_client_order_id``
        for the remaining quantity. Returns the new order.

        If the cancel succeeded but the new placement fails (or nothing is left to
        place), the error is raised and the old order is already canceled: callers
        must ask the venue about the old id before deciding the order's state."""

    @abc.abstractmethod
    def fetch_order(self, *, symbol: str, client_order_id: str) -> VenueOrder:
        """Look an order up by our client order id. ``VenueOrderNotFound`` if unknown."""

    @abc.abstractmethod
    def fetch_open_orders(self, symbol: str | None = None) -> list[VenueOrder]: ...

    @abc.abstractmethod
    def fetch_trades(
        self, *, symbol: str, since_ms: int | None = None, limit: int = 500
    ) -> list[VenueTrade]:
        """Our trades on ``symbol`` at or after ``since_ms`` (the cursor), oldest first."""

    @abc.abstractmethod
    def fetch_order_book(self, symbol: str, depth: int = 10) -> OrderBook: ...

    @abc.abstractmethod
    def fetch_balances(self) -> dict[str, Balance]: ...

    def cancel_all(self, symbol: str) -> list[VenueOrder]:
        """Cancel every open order on ``symbol``; default: one cancel per open order."""
        canceled = []
        for order in self.fetch_open_orders(symbol):
            try:
                canceled.append(
                    self.cancel_order(
                        symbol=symbol,
                        client_order_id=order.client_order_id or "",
                        venue_order_id=order.venue_order_id,
                    )
                )
            except VenueOrderNotFound:
                continue
        return canceled

    def last_used_weight(self) -> int | None:
        """The venue's last reported request weight (for the rate limiter), if known."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
