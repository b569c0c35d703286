"""Venue choice for an order sent without a venue (reads the database; the pure smart
order router will live in routing/sor.py).

For now: the first enabled venue by name. The smart order router (best price across
venues, splitting) replaces this; it keeps the same signature.
"""

from __future__ import annotations

from typing import Any


def choose_venue(*, instrument: Any) -> Any:
    from venues.models import Venue

    return Venue.objects.filter(enabled=True).order_by("name").first()
