"""What Redis knows of each venue now: its circuit breaker and rate-limit use (as the
venue guard keeps them), any status blob, and the freshness of its books. Read by the
blotter, the venue admin and the venues API."""

from __future__ import annotations

import json
import time
from typing import Any

from venues.breaker import CircuitBreaker
from venues.guard import pools_for
from venues.ratelimit import RateLimiter

BOOK_STALE_S = 10.0  # a venue whose newest book is older than this shows as stale
VENUE_STATUS_KEY = "oms:venue:{name}:status"  # JSON, same shape as a venue.status event
BOOK_KEY = "oms:book:{venue}:{symbol}"  # written by `oms marketdata` (marketdata/store.py)


def venue_states(redis: Any, venues: list[dict[str, Any]], symbols: list[str]) -> list[dict]:
    """Each venue row with what Redis knows now: its circuit breaker and rate-limit use
    (``venues/breaker.py``, ``venues/ratelimit.py``), any status blob written to
    ``oms:venue:<name>:status`` (same shape as a ``venue.status`` event), and the
    freshness of its books."""
    keys: list[str] = []
    for v in venues:
        keys.append(VENUE_STATUS_KEY.format(name=v["name"]))
        keys += [BOOK_KEY.format(venue=v["name"], symbol=s) for s in symbols]
    values = iter(redis.mget(keys) if keys else [])
    now = time.time()
    out = []
    for v in venues:
        blob = json_or_none(next(values)) or {}
        raw_books = [json_or_none(next(values)) for _ in symbols]
        books = [b for b in raw_books if b]
        newest = max((b["ts"] for b in books if isinstance(b.get("ts"), int | float)), default=None)
        market_data = [_market_data(s, b, now) for s, b in zip(symbols, raw_books, strict=True)]
        state = {
            "venue": v["name"],
            "driver": v["driver"],
            "enabled": v["enabled"],
            "book_age_s": None if newest is None else round(max(0.0, now - newest), 1),
            "market_data": market_data,
            "breaker": None,
            "breaker_open_until": None,
            "breaker_failures": 0,
            "rate_limit": None,
            "detail": "",
        }
        state.update(guard_state(redis, v))
        state.update({k: val for k, val in blob.items() if k in state and k != "venue"})
        state["status"] = str(blob.get("status") or _summary(state))
        out.append(state)
    return out


def _market_data(symbol: str, raw: Any, now: float) -> dict[str, Any]:
    """One symbol's book state at a venue (``oms marketdata``), as the blotter shows it."""
    from marketdata.consolidated import VenueBook

    try:
        book = VenueBook.from_json(raw)
    except (KeyError, TypeError, ValueError, ArithmeticError):
        return {"symbol": symbol, "state": "NONE", "age_ms": None, "reason": "no market data"}
    state = book.effective_state(now)
    return {
        "symbol": symbol,
        "state": str(state),
        "age_ms": round(book.age_s(now) * 1000),
        "reason": book.reason if state == book.state else "no recent update",
    }


def guard_state(redis: Any, venue: dict[str, Any]) -> dict[str, Any]:
    """Breaker and rate-limit use of one venue, as the venue guard keeps them."""
    breaker = CircuitBreaker(redis, venue["name"]).state()
    limiter = RateLimiter(redis, venue["name"], pools_for(venue.get("rate_limits")))
    return {
        "breaker": breaker["state"],
        "breaker_open_until": breaker["open_until"],
        "breaker_failures": breaker["failures"],
        "rate_limit": {"usage": limiter.usage(), "paused_for_s": round(limiter.paused_for(), 1)},
    }


def _summary(state: dict[str, Any]) -> str:
    """``up``, ``degraded`` (breaker probing, or rate-limit paused), ``down`` (breaker
    open), ``stale`` (no fresh book), ``disabled``."""
    if not state["enabled"]:
        return "disabled"
    if state["breaker"] == "open":
        return "down"
    paused = (state.get("rate_limit") or {}).get("paused_for_s")
    if state["breaker"] == "half_open" or paused:
        return "degraded"
    if state["book_age_s"] is None or state["book_age_s"] > BOOK_STALE_S:
        return "stale"
    return "up"


def json_or_none(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
