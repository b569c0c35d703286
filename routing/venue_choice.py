"""Venue choice for an order sent without a venue (reads the database; the pure smart
order router will live in routing/sor.py).

For now: the first enabled venue by name whose breaker is not open. The smart order router (best price across
venues, splitting) replaces this; it keeps the same signature.
"""

from __future__ import annotations

from typing import Any


def choose_venue(*, instrument: Any) -> Any:
    """The first enabled venue whose circuit breaker is not open (else the first)."""
    from omsweb.redis_client import client
    from venues.breaker import is_open
    from venues.models import Venue

    venues = list(Venue.objects.filter(enabled=True).order_by("name"))
    for venue in venues:
        if not is_open(client(), venue.name):
            return venue
    return venues[0] if venues else None
