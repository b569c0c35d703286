"""What the router plans on, read from the database and Redis: the venues' books (as
``oms marketdata`` publishes them) and each enabled venue's condition (fees, the
instrument's lot, minimum notional and tick, breaker, rate-limit headroom, listing,
the venue's trading state, score).

Reads only, no locks: the route task (``routing/parents.py``) gathers them before it
takes the parent's lock, and the engine asks ``unroutable`` before it accepts a parent.
Imports nothing of the execution engine (the engine imports this module).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marketdata.consolidated import VenueBook
from routing import sor

log = logging.getLogger(__name__)

ZERO = Decimal(0)
ORDERS_POOLS = ("orders", "weight")  # the pool that limits new orders, else the weight pool


@dataclass(frozen=True)
class Inputs:
    books: list[VenueBook]
    conditions: dict[str, sor.VenueCondition]
    now: float
    notes: dict[str, str] = field(default_factory=dict)  # venue -> why it is not enabled

    def summary(self) -> dict[str, Any]:
        """The inputs that mattered, for the route decision's record."""
        books = {}
        for book in self.books:
            books[book.venue] = {
                "state": str(book.effective_state(self.now)),
                "age_ms": int(book.age_s(self.now) * 1000),
                "bid": None if book.best_bid is None else str(book.best_bid),
                "ask": None if book.best_ask is None else str(book.best_ask),
            }
        conditions = {
            name: {
                "taker_fee": str(c.taker_fee),
                "breaker_open": c.breaker_open,
                "rate_headroom": c.rate_headroom,
                "enabled": c.enabled,
                "score": str(c.score),
                "balance": None if c.balance is None else str(c.balance),
                **({"note": self.notes[name]} if name in self.notes else {}),
            }
            for name, c in self.conditions.items()
        }
        return {"books": books, "conditions": conditions}


def rate_headroom(redis: Any, venue: Any, now: float | None = None) -> int:
    """How many new orders the venue's cluster-wide rate limiter would let through now
    (its order pool, refilled to now, less the share reserved for cancels); 0 while the
    venue is paused after a 429."""
    from venues.guard import pools_for
    from venues.ratelimit import RateLimiter

    limiter = RateLimiter(redis, venue.name, pools_for(venue.rate_limits))
    if limiter.paused_for() > 0:
        return 0
    pool = next((limiter.pools[p] for p in ORDERS_POOLS if p in limiter.pools), None)
    if pool is None:
        return 1_000_000
    tokens, ts = redis.hmget(f"oms:rl:{venue.name}:{pool.name}", "tokens", "ts")
    now_ms = (now or time.time()) * 1000
    if tokens is None:
        left = float(pool.capacity)
    else:
        elapsed = max(0.0, now_ms - float(ts or now_ms))
        left = min(float(pool.capacity), float(tokens) + elapsed * pool.rate_per_s / 1000)
    return max(0, int(left - pool.reserve))


def _halted_venues(venue_ids: Iterable[int]) -> dict[int, str]:
    """Venues whose trading state (the kill switch at venue scope) is not ACTIVE."""
    from risk.models import TradingState

    rows = TradingState.objects.filter(scope="venue", venue_id__in=list(venue_ids)).exclude(
        state="ACTIVE"
    )
    return {row.venue_id: row.state for row in rows if row.venue_id is not None}


def gather(
    instrument: Any, *, side: str | None = None, exclude: Mapping[str, str] | None = None
) -> Inputs:
    """The books of ``instrument`` and the condition of every enabled venue. ``side``:
    the order's, for each venue's free balance of what it spends (quote for a buy, base
    for a sell; unknown: no cap). ``exclude``: venues not to route to this time, with why
    (a venue that rejected a child of the parent): listed as not enabled, the reason
    kept in ``notes``."""
    from marketdata.store import read_books
    from omsweb.redis_client import client
    from routing.scores import scores_for
    from venues.balances import read as read_balances
    from venues.breaker import open_venues
    from venues.models import Venue
    from venues.status import listed

    venues = list(Venue.objects.filter(enabled=True).order_by("name"))
    names = [v.name for v in venues]
    redis = client()
    now = time.time()
    try:
        books = read_books(redis, [instrument.symbol], names)
        markets = listed(redis, names)
        breakers = open_venues(redis, names)
        headroom = {v.name: rate_headroom(redis, v, now) for v in venues}
        balances = read_balances(redis, names)
    except Exception:  # Redis down: no market data, so no route (said per venue)
        log.warning("routing: Redis unreachable", exc_info=True)
        books, markets, breakers, headroom, balances = [], {}, set(), {}, {}
    spends = None if side is None else instrument.quote if side == "buy" else instrument.base
    known = any(symbols is not None for symbols in markets.values())
    halted = _halted_venues(v.pk for v in venues)
    scores = scores_for(instrument.symbol, names)
    conditions: dict[str, sor.VenueCondition] = {}
    notes: dict[str, str] = {}
    for venue in venues:
        enabled = True
        if known and instrument.symbol not in (markets.get(venue.name) or ()):
            enabled, notes[venue.name] = False, f"does not list {instrument.symbol}"
        elif venue.pk in halted:
            enabled, notes[venue.name] = False, f"trading state {halted[venue.pk]}"
        elif exclude and venue.name in exclude:
            enabled, notes[venue.name] = False, exclude[venue.name]
        conditions[venue.name] = sor.VenueCondition(
            venue=venue.name,
            taker_fee=_plain(venue.taker_fee or ZERO),
            lot_size=_plain(instrument.lot_size),
            min_qty=_plain(instrument.lot_size),
            min_notional=_plain(instrument.min_notional),
            tick_size=_plain(instrument.tick_size),
            balance=_free(balances.get(venue.name), spends),
            breaker_open=venue.name in breakers,
            rate_headroom=headroom.get(venue.name, 0),
            enabled=enabled,
            score=scores.get(venue.name, Decimal(1)),
        )
    return Inputs(books=books, conditions=conditions, now=now, notes=notes)


def _plain(value: Decimal) -> Decimal:
    """Without the database column's trailing zeros (0.500000000000 -> 0.5), never in
    exponent form, so the plan's figures read as the order's."""
    text = format(value, "f")
    return Decimal(text.rstrip("0").rstrip(".") if "." in text else text)


def _free(balances: Mapping[str, Decimal] | None, asset: str | None) -> Decimal | None:
    """The free amount of ``asset`` at a venue; None (no cap) when not known."""
    if balances is None or asset is None:
        return None
    return _plain(balances.get(asset, ZERO))


def spec_of(order: Any, quantity: Decimal) -> sor.OrderSpec:
    return sor.OrderSpec(
        symbol=order.instrument.symbol,
        side=order.side,
        type=order.type,
        quantity=_plain(quantity),
        limit_price=None if order.price is None else _plain(order.price),
        time_in_force=order.time_in_force,
    )


def explain(plan: sor.Plan, inputs: Inputs) -> tuple[sor.VenueDecision, ...]:
    """The plan's venue decisions, with our own reason where we set a venue aside
    (``Inputs.notes``: not listed, halted, rejected a child)."""
    from dataclasses import replace

    return tuple(
        replace(d, reason=inputs.notes[d.venue]) if d.venue in inputs.notes and not d.quantity
        else d
        for d in plan.venues
    )  # fmt: skip


def unroutable(order: Any) -> str | None:
    """``NO_ROUTE: ...`` naming each venue's state when no venue may trade the order now,
    else None (the engine asks before it accepts a parent)."""
    inputs = gather(order.instrument, side=order.side)
    plan = sor.plan(spec_of(order, order.quantity), inputs.books, inputs.conditions, inputs.now)
    if plan.unroutable is None:
        return None
    return _named(plan.unroutable, inputs)


def _named(text: str, inputs: Inputs) -> str:
    """The planner's NO_ROUTE text, with our notes for the venues we set aside."""
    if not inputs.notes:
        return text if text.startswith("NO_ROUTE") else f"NO_ROUTE: {text}"
    parts = [f"{name} {why}" for name, why in sorted(inputs.notes.items())]
    return f"{text if text.startswith('NO_ROUTE') else 'NO_ROUTE: ' + text} ({'; '.join(parts)})"
