"""Venue choice for an order sent without a venue (reads the database; the pure smart
order router will live in routing/sor.py).

For now: the first enabled venue by name whose breaker is not open. The smart order router (best price across
venues, splitting) replaces this; it keeps the same signature.
"""

from __future__ import annotations

import functools
from typing import Any

from omsweb import sqlrows as sr


@functools.cache
def _enabled_sql() -> str:
    from venues.models import Venue

    return (
        f"SELECT {sr.part(Venue).select('v')} FROM {sr.table(Venue)} v "
        f"WHERE v.{sr.column(Venue, 'enabled')} ORDER BY v.{sr.column(Venue, 'name')}"
    )


def choose_venue(*, instrument: Any) -> Any:
    """The first enabled venue whose circuit breaker is not open (else the first). One
    query and one Redis round trip, whatever the number of venues."""
    from django.db import connection

    from omsweb.redis_client import client
    from venues.breaker import open_venues
    from venues.models import Venue

    with connection.cursor() as cursor:
        cursor.execute(_enabled_sql())
        venues = [sr.hydrate((sr.part(Venue),), row)[0] for row in cursor.fetchall()]
    open_now = open_venues(client(), [v.name for v in venues])
    for venue in venues:
        if venue.name not in open_now:
            return venue
    return venues[0] if venues else None
