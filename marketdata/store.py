"""Where market data lives in Redis: written by ``oms marketdata``, read by risk, routing,
the API and the blotter. Every reader goes through this module.

* ``oms:book:<venue>:<symbol>``: JSON of a :class:`~marketdata.consolidated.VenueBook`
  (top N levels a side, best bid/ask and mid, the venue's sequence, exchange and receive
  times, last trade, taker fee, state and reason), refreshed at least every second while
  the handler runs, expiring after ``BOOK_TTL_S`` when it does not;
* ``oms:md:venues``: the set of venue names that publish books;
* ``oms:mark:<symbol>``: the consolidated mid of the LIVE venues (marks for P&L);
* ``oms:markhist:<symbol>``: the same mids over the last ``MARK_HISTORY_S`` seconds, a
  sorted set scored by publish time, so transaction-cost analysis reads the mid in force
  at any recent moment (a fill's, and one, five and sixty seconds after it) however late
  it looks.

Functions take the Redis client as an argument, so the handler, the benchmarks and the
tests use them without Django.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from marketdata.consolidated import Consolidated, VenueBook, consolidate

log = logging.getLogger(__name__)

BOOK_KEY = "oms:book:{venue}:{symbol}"
VENUES_KEY = "oms:md:venues"
MARK_KEY = "oms:mark:{symbol}"
MARK_HISTORY_KEY = "oms:markhist:{symbol}"
BOOK_TTL_S = 60
MARK_HISTORY_S = 300  # covers the longest markout (60 s) plus a late fill or sweep
MARK_MAX_AGE_S = 5.0  # a mid older than this at the asked moment is not "in force"


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


def mark_history_key(symbol: str) -> str:
    return MARK_HISTORY_KEY.format(symbol=symbol)


def publish_mark(redis: Any, symbol: str, now: float | None = None) -> None:
    merged = read_consolidated(redis, symbol, now=now)
    if merged.mid is not None:
        record_mark(redis, symbol, merged.mid, now or time.time())


def record_mark(redis: Any, symbol: str, mid: Decimal, ts: float) -> None:
    """The symbol's mark, and the same mid in its recent history, in one round trip."""
    history = mark_history_key(symbol)
    pipe = redis.pipeline(transaction=False)
    pipe.set(mark_key(symbol), str(mid), ex=BOOK_TTL_S)
    pipe.zadd(history, {f"{ts:.6f}:{mid}": ts})
    pipe.zremrangebyscore(history, "-inf", f"({ts - MARK_HISTORY_S}")
    pipe.expire(history, MARK_HISTORY_S)
    pipe.execute()


def _decimal(raw: Any) -> Decimal | None:
    try:
        value = Decimal(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() and value > 0 else None


def read_mark(redis: Any, symbol: str) -> Decimal | None:
    """The symbol's consolidated mid now (None: no LIVE venue lately)."""
    raw = redis.get(mark_key(symbol))
    return None if raw is None else _decimal(raw)


def marks_at(
    redis: Any, symbol: str, moments: Sequence[float], *, max_age_s: float = MARK_MAX_AGE_S
) -> list[Decimal | None]:
    """The consolidated mid in force at each moment: the last one published at or before
    it, if it is at most ``max_age_s`` older (else None: no LIVE market data then, or
    the moment is older than the history)."""
    history = mark_history_key(symbol)
    pipe = redis.pipeline(transaction=False)
    for ts in moments:
        pipe.zrevrangebyscore(history, ts, ts - max_age_s, start=0, num=1)
    out: list[Decimal | None] = []
    for found in pipe.execute() if moments else []:
        member = found[0].decode() if found else None
        out.append(None if member is None else _decimal(member.split(":", 1)[1]))
    return out


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
