"""The FIX report listener: every change to an order, as a compact record in a Redis
stream of the user who entered it, for the gateway to turn into execution reports.

A listener of ``omsweb.events`` (``settings.OMS_EVENT_LISTENERS``): it runs in whichever
process changed the order (web, workers), so an order entered over REST or the blotter is
reported to that user's FIX sessions too (drop copy). Orders without a user (the
router's children) are not reported: their parent is.

The record is appended with ``XADD`` when the event is emitted: inside the engine's
transaction, while it holds the order's row lock, so the stream has an order's changes
in their order (appending on commit would let a worker's ack overtake the web
process's PendingNew). A change whose transaction then rolls back leaves a record of
something that never happened: the gateway sends a record only once the order's event
of that sequence is committed (``fixgw/reports.py``), and skips it if that never comes.
The gateway (``fixgw/reports.py``) reads each user's stream
from a cursor per session, so what was produced while no session was logged on is sent at
the next logon. The stream keeps the last ``STREAM_MAXLEN`` records per user.
"""

from __future__ import annotations

import logging
from typing import Any

from fixgw.mapping import OrderFacts, report_kind
from orders.events import FillBooked, OrderChanged
from orders.models import Order

log = logging.getLogger(__name__)

STREAM_PREFIX = "oms:fix:er:"
STREAM_MAXLEN = 100_000


def stream_key(user_id: int) -> str:
    return f"{STREAM_PREFIX}{int(user_id)}"


def facts(order: Order, *, kind: str, fill: Any = None) -> OrderFacts:
    return OrderFacts(
        order_id=order.pk,
        seq=order.event_sequence,
        kind=kind,
        status=order.status,
        client_order_id=order.client_order_id,
        account=order.account.code,
        symbol=order.instrument.symbol,
        side=order.side,
        type=order.type,
        quantity=order.quantity,
        price=order.price,
        time_in_force=order.time_in_force,
        filled=order.filled_quantity,
        average_price=order.average_price,
        reason=order.reason,
        last_qty=None if fill is None else fill.quantity,
        last_px=None if fill is None else fill.price,
        trade_id="" if fill is None else fill.venue_trade_id,
        venue_order_id=order.venue_order_id,
    )


def on_event(event: Any) -> None:
    if isinstance(event, FillBooked):
        # a fill's Trade report; the OrderChanged(OrderFilled) that follows adds nothing
        order, fill, kind = event.order, event.fill, "OrderFilled"
    elif isinstance(event, OrderChanged) and event.fill is not None:
        # a parent's fill (one of its children's, which are not reported): its Trade report
        order, fill, kind = event.order, event.fill, event.kind
    elif isinstance(event, OrderChanged) and event.kind != "OrderFilled":
        order, fill, kind = event.order, None, event.kind
    else:
        return
    if order.created_by_id is None or report_kind(kind) is None:
        return
    _append(stream_key(order.created_by_id), facts(order, kind=kind, fill=fill).to_record())


def _append(key: str, record: dict[str, str]) -> None:
    from omsweb.redis_client import client

    try:
        client().xadd(key, record, maxlen=STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]
    except Exception:
        # Redis down: the FIX client misses this report; an OrderStatusRequest (H) gives
        # the order's state, and the blotter and REST API have it
        log.exception("FIX report for order %s not recorded", record.get("order_id"))
