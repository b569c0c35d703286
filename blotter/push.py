"""The live push: the engine's and the venues' events, sent to the blotters when the
transaction that made them commits (``omsweb.realtime``). A listener of
``omsweb.events`` (``settings.OMS_EVENT_LISTENERS``)."""

from __future__ import annotations

from typing import Any

from blotter import payloads
from marketdata.events import MarketDataStateChanged
from omsweb import realtime
from orders.events import FillBooked, OrderChanged
from venues.events import VenueStatusChanged


def on_event(event: Any) -> None:
    if isinstance(event, OrderChanged):
        order = event.order
        realtime.publish_on_commit(
            "order.updated", account_id=order.account_id, **payloads.order_payload(order)
        )
    elif isinstance(event, FillBooked):
        account_id = event.order.account_id
        realtime.publish_on_commit(
            "position.updated", account_id=account_id, **payloads.position_payload(event.position)
        )
        realtime.publish_on_commit(
            "fill.created",
            account_id=account_id,
            **payloads.fill_payload(event.fill, order=event.order),
        )
    elif isinstance(event, VenueStatusChanged):
        from blotter.snapshot import publish_venue_status
        from venues.models import Venue

        venue = Venue.objects.filter(pk=event.venue_id).first()
        if venue is not None:
            publish_venue_status(venue, detail=event.detail)
    elif isinstance(event, MarketDataStateChanged):
        from blotter.snapshot import publish_venue_status
        from venues.models import Venue

        venue = Venue.objects.filter(name=event.venue).first()
        if venue is not None:
            detail = f"{event.symbol} market data {event.state}"
            publish_venue_status(
                venue, detail=detail + (f": {event.reason}" if event.reason else "")
            )
