"""Commands: what an entry point asks the execution engine to do (imperative names).

REST, the blotter, the kill switch, reconciliation, the router's child orders and FIX
build these and hand them to ``orders.engine.execute``; nothing else changes an order
on a client's behalf. Plain frozen values (codes and ids, not rows), so the same
command can be built anywhere and logged as it is. Pure: imports nothing from Django.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class SubmitOrder:
    """A new order. ``venue`` None: the router chooses. ``user_id`` None: the OMS
    itself (the router's child orders), which may trade every account."""

    account: str
    symbol: str
    side: str  # buy | sell
    type: str  # market | limit
    quantity: Decimal
    price: Decimal | None = None
    time_in_force: str | None = None  # GTC | IOC | FOK; None: GTC (IOC for a market order)
    venue: str | None = None
    client_order_id: str | None = None
    user_id: int | None = None
    parent_id: int | None = None
    source: str = "api"


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel one order. ``send`` False: mark it PENDING_CANCEL without queueing its
    venue cancel (the kill switch cancels a whole venue symbol at once)."""

    order_id: int
    reason: str = ""
    source: str = "api"
    send: bool = True


@dataclass(frozen=True, slots=True)
class ModifyOrder:
    """Change a working order's quantity and/or price (cancel-replace or native edit)."""

    order_id: int
    quantity: Decimal | None = None
    price: Decimal | None = None
    source: str = "api"


@dataclass(frozen=True, slots=True)
class CancelAll:
    """Cancel every open order among ``order_ids`` (the caller selected and authorised
    them); the engine skips those that finished meanwhile."""

    order_ids: tuple[int, ...]
    reason: str = ""
    source: str = "api"


Command = SubmitOrder | CancelOrder | ModifyOrder | CancelAll
