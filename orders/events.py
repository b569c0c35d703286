"""What the execution engine says happened (past tense), for the listeners of
``omsweb.events``: the live push, post-trade risk, and later FIX reports and TCA.

Emitted inside the transaction that wrote the change, after the write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orders.models import Fill, Order, Position


@dataclass(frozen=True)
class OrderChanged:
    """The order's row changed (status, quantities, venue ids) or was created.
    ``kind``: the lifecycle event that made the change (``OrderAccepted``...), or
    ``OrderCreated`` for a new order that passed risk; FIX execution reports take their
    ExecType from it (the status alone cannot tell a cancel refused from an ack)."""

    order: Order
    kind: str = ""
    # a parent's fill (``orders.engine.ParentFill``: quantity, price, venue_trade_id): a
    # parent books no Fill row, its child does; FIX reports it as the parent's trade
    fill: Any = None


@dataclass(frozen=True)
class FillBooked:
    """A fill was stored and moved the account's position."""

    order: Order
    fill: Fill
    position: Position
