"""Test helper: a venue's book in Redis as ``oms marketdata`` publishes it."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from marketdata.book import MdState
from marketdata.consolidated import VenueBook
from marketdata.store import book_key, mark_key, publish


def publish_book(
    redis: Any,
    venue: str,
    symbol: str,
    mid: str,
    *,
    age_s: float = 0.0,
    state: MdState = MdState.LIVE,
    mark: bool = True,
) -> list[str]:
    """A one-level book at ``mid`` (bid = ask = mid, as the tests' reference), published
    ``age_s`` ago in ``state``, and the symbol's mark; returns the keys written."""
    price = Decimal(mid)
    book = VenueBook(
        venue=venue,
        symbol=symbol,
        state=state,
        bids=[(price, Decimal(1))],
        asks=[(price, Decimal(1))],
        ts=time.time() - age_s,
    )
    publish(redis, book)
    keys = [book_key(venue, symbol)]
    if mark:
        redis.set(mark_key(symbol), mid)
        keys.append(mark_key(symbol))
    return keys
