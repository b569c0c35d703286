"""Realtime event payloads: the REST shapes (``orders/shapes.py``) plus what a
live client needs to order updates.

Built inside the service's transaction from objects the service already holds (their
related rows are loaded), so building one costs no query.
"""

from __future__ import annotations

from typing import Any

from orders.models import Fill, Order, Position
from orders.shapes import fill_to_dict, order_to_dict, position_to_dict


def order_payload(order: Order) -> dict[str, Any]:
    """``order.updated``: the order as the REST API shows it, plus ``version`` (its
    event sequence) so a client never replaces a newer state with an older one."""
    data = order_to_dict(order)
    data["version"] = order.event_sequence
    return data


def fill_payload(fill: Fill, *, order: Order) -> dict[str, Any]:
    """``fill.created``: the fill as the REST API shows it, plus the order's client id."""
    data = fill_to_dict(fill)
    data["client_order_id"] = order.client_order_id
    return data


def position_payload(position: Position) -> dict[str, Any]:
    """``position.updated``: the position as the REST API shows it (mark price and
    unrealized P&L as of the last mark the venue stream wrote)."""
    return position_to_dict(position)
