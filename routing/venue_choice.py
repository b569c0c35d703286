"""Whether an order sent to a named venue may go there (it lists the instrument). An
order sent without a venue is a parent: the smart order router plans its children
(routing/parents.py, routing/sor.py)."""

from __future__ import annotations

from typing import Any


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
