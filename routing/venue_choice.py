"""Venue choice for an order sent without a venue (reads the database; the pure smart
order router will live in routing/sor.py).

For now: the first enabled venue by name that lists the instrument and whose breaker is
not open. The smart order router (best price across
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
    """The first enabled venue that lists the instrument and whose circuit breaker is
    not open (else the first that lists it); None if no venue lists it. Until any
    venue's markets are known (a fresh start, before the first warm-up publishes them)
    every enabled venue counts as listing it. One query and two Redis round trips,
    whatever the number of venues."""
    from django.db import connection

    from omsweb.redis_client import client
    from venues.breaker import open_venues
    from venues.models import Venue
    from venues.status import listed

    with connection.cursor() as cursor:
        cursor.execute(_enabled_sql())
        venues = [sr.hydrate((sr.part(Venue),), row)[0] for row in cursor.fetchall()]
    redis = client()
    names = [v.name for v in venues]
    markets = listed(redis, names)
    if any(symbols is not None for symbols in markets.values()):
        venues = [v for v in venues if instrument.symbol in (markets[v.name] or ())]
    open_now = open_venues(redis, [v.name for v in venues])
    for venue in venues:
        if venue.name not in open_now:
            return venue
    return venues[0] if venues else None


def listing_problem(venue: Any, *, instrument: Any) -> str | None:
    """Why an order for ``instrument`` may not go to ``venue`` (it does not list it),
    or None (it does, or its markets are not known yet: the venue itself then refuses
    a symbol it does not trade)."""
    from omsweb.redis_client import client
    from venues.status import listed

    symbols = listed(client(), [venue.name])[venue.name]
    if symbols is None or instrument.symbol in symbols:
        return None
    return f"venue {venue.name} does not list {instrument.symbol}"
