"""Where market data lives in Redis: written by ``oms marketdata``, read by risk, routing,
the API and the blotter. Every reader goes through this module.

* ``oms:book:<venue>:<symbol>``: JSON of a :class:`~marketdata.consolidated.VenueBook`
  (top N levels a side, best bid/ask and mid, the venue's sequence, exchange and receive
  times, last trade, taker fee, state and reason), refreshed at least every second while
  the handler runs, expiring after ``BOOK_TTL_S`` when it does not;
* ``oms:md:venues``: the set of venue names that publish books;
* ``oms:mark:<symbol>``: the consolidated mid of the LIVE venues (marks for P&L).

Functions take the Redis client as an argument, so the handler, the benchmarks and the
tests use them without Django.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from typing import Any

from marketdata.consolidated import Consolidated, VenueBook, consolidate

log = logging.getLogger(__name__)

BOOK_KEY = "oms:book:{venue}:{symbol}"
VENUES_KEY = "oms:md:venues"
MARK_KEY = "oms:mark:{symbol}"
BOOK_TTL_S = 60


def book_key(venue: str, symbol: str) -> str:
    return BOOK_KEY.format(venue=venue, symbol=symbol)


def mark_key(symbol: str) -> str:
    return MARK_KEY.format(symbol=symbol)


def publish(redis: Any, book: VenueBook) -> None:
    """Write one venue's book; then the symbol's mark from every venue's book."""
    pipe = redis.pipeline(transaction=False)
    pipe.set(book_key(book.venue, book.symbol), json.dumps(book.to_json()), ex=BOOK_TTL_S)
    pipe.sadd(VENUES_KEY, book.venue)
    pipe.execute()


def publish_mark(redis: Any, symbol: str, now: float | None = None) -> None:
    merged = read_consolidated(redis, symbol, now=now)
    if merged.mid is not None:
        redis.set(mark_key(symbol), str(merged.mid), ex=BOOK_TTL_S)


def venues(redis: Any) -> list[str]:
    return sorted(v.decode() for v in redis.smembers(VENUES_KEY))


def read_books(
    redis: Any, symbols: Iterable[str], venue_names: Iterable[str] | None = None
) -> list[VenueBook]:
    """Every published book of ``symbols`` (of ``venue_names``, default all venues)."""
    names = venues(redis) if venue_names is None else list(venue_names)
    keys = [book_key(v, s) for s in symbols for v in names]
    out: list[VenueBook] = []
    for raw in redis.mget(keys) if keys else []:
        if raw is None:
            continue
        try:
            out.append(VenueBook.from_json(json.loads(raw)))
        except (KeyError, TypeError, ValueError, ArithmeticError):
            log.warning("unreadable market data in Redis: %r", raw[:200])
    return out


def read_consolidated(
    redis: Any, symbol: str, *, depth: int | None = None, now: float | None = None
) -> Consolidated:
    return consolidate(symbol, read_books(redis, [symbol]), now or time.time(), depth)
