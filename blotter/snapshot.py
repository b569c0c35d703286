"""What a blotter client gets on connect (and whenever it asks again): the state to
start from, plus the sequence number of each of its streams as read *before* the state,
so every live event with a higher number is news and every lower one is already in.

Reads only; runs in the consumer through ``database_sync_to_async``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.db import DatabaseError
from django.db.models import Q

from blotter.payloads import fill_payload, order_payload, position_payload
from omsweb import realtime
from omsweb.roles import ADMIN, RISK, TRADER, has_role, visible_accounts
from orders.api.serializers import dec
from orders.domain.lifecycle import TERMINAL_STATUSES
from orders.models import Account, Fill, Instrument, Order, Position
from venues.models import Venue

log = logging.getLogger(__name__)

MAX_WORKING_ORDERS = 1000
RECENT_ORDERS = 200
RECENT_FILLS = 100
BOOK_STALE_S = 10.0  # a venue whose newest book is older than this shows as stale

# Redis keys other parts write and the blotter reads (see docs/realtime.md):
VENUE_STATUS_KEY = "oms:venue:{name}:status"  # JSON, same shape as a venue.status event
BOOK_KEY = "oms:book:{venue}:{symbol}"  # written by the venue stream
MARK_KEY = "oms:mark:{symbol}"  # written by the venue stream


def visible_account_ids(user: Any) -> list[int]:
    return list(visible_accounts(user).order_by("pk").values_list("pk", flat=True))


def user_info(user: Any) -> dict[str, Any]:
    roles = [r for r in (ADMIN, RISK, TRADER) if has_role(user, r)]
    return {
        "username": user.get_username(),
        "roles": roles,
        "sees_all_accounts": has_role(user, RISK, ADMIN),
        "can_kill_switch": has_role(user, RISK, ADMIN),
    }


def instrument_info(instrument: Instrument) -> dict[str, Any]:
    return {
        "symbol": instrument.symbol,
        "base": instrument.base,
        "quote": instrument.quote,
        "tick_size": dec(instrument.tick_size),
        "lot_size": dec(instrument.lot_size),
        "min_notional": dec(instrument.min_notional),
        "enabled": instrument.enabled,
    }


def read_seqs(redis: Any, streams: Iterable[str]) -> dict[str, int]:
    streams = sorted(streams)
    if not streams:
        return {}
    values = redis.mget([realtime.seq_key(s) for s in streams])
    return {s: int(v or 0) for s, v in zip(streams, values, strict=True)}


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
        blob = _json(next(values)) or {}
        books = [b for b in (_json(next(values)) for _ in symbols) if b]
        newest = max((b["ts"] for b in books if isinstance(b.get("ts"), int | float)), default=None)
        state = {
            "venue": v["name"],
            "driver": v["driver"],
            "enabled": v["enabled"],
            "book_age_s": None if newest is None else round(max(0.0, now - newest), 1),
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


def guard_state(redis: Any, venue: dict[str, Any]) -> dict[str, Any]:
    """Breaker and rate-limit use of one venue, as the venue guard keeps them."""
    try:
        from venues.breaker import CircuitBreaker
        from venues.guard import pools_for
        from venues.ratelimit import RateLimiter
    except ImportError:  # pragma: no cover - the guard is part of the venues app
        return {}
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


def read_marks(redis: Any, symbols: list[str]) -> dict[str, str]:
    if not symbols:
        return {}
    values = redis.mget([MARK_KEY.format(symbol=s) for s in symbols])
    return {s: v.decode() for s, v in zip(symbols, values, strict=True) if v}


def read_quotes(redis: Any, venues: list[dict[str, Any]], symbols: list[str]) -> dict[str, dict]:
    """Best bid and ask per symbol across the enabled venues' latest books."""
    names = [v["name"] for v in venues if v["enabled"]]
    keys = [BOOK_KEY.format(venue=n, symbol=s) for s in symbols for n in names]
    values = iter(redis.mget(keys) if keys else [])
    out: dict[str, dict] = {}
    for symbol in symbols:
        bids, asks = [], []
        for _ in names:
            book = _json(next(values))
            if book and book.get("bid") not in (None, "None"):
                bids.append(Decimal(book["bid"]))
            if book and book.get("ask") not in (None, "None"):
                asks.append(Decimal(book["ask"]))
        if bids or asks:
            out[symbol] = {
                "bid": dec(max(bids)) if bids else None,
                "ask": dec(min(asks)) if asks else None,
            }
    return out


def _json(raw: bytes | None) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def venue_rows() -> list[dict[str, Any]]:
    fields = ["name", "driver", "enabled"]
    if any(f.name == "rate_limits" for f in Venue._meta.get_fields()):
        fields.append("rate_limits")
    return list(Venue.objects.order_by("name").values(*fields))


def trading_state(account_ids: list[int]) -> list[dict[str, Any]] | None:
    """Every non-default trading state the user may see (kill switch), or None when the
    risk app has none. Account scopes only for the user's accounts."""
    try:
        from risk.models import TradingState
    except ImportError:
        return None
    rows = TradingState.objects.select_related("venue", "account", "instrument").filter(
        Q(account__isnull=True) | Q(account_id__in=account_ids)
    )
    try:
        from risk.services import state_to_dict as to_dict  # the REST and event shape
    except ImportError:
        to_dict = trading_state_row
    try:
        return [to_dict(row) for row in rows]
    except DatabaseError:  # the risk app's tables are not migrated (yet)
        log.warning("trading state unavailable", exc_info=True)
        return None


def trading_state_row(row: Any) -> dict[str, Any]:
    changed_at = getattr(row, "changed_at", None)
    return {
        "scope": row.scope,
        "target": getattr(row, "target", None),
        "symbol": getattr(row, "symbol", None),
        "state": row.state,
        "reason": getattr(row, "reason", ""),
        "changed_by": getattr(row, "changed_by_name", "") or None,
        "changed_at": changed_at.isoformat() if changed_at else None,
        "source": getattr(row, "source", None),
    }


def build(user: Any, *, account_ids: list[int], redis: Any) -> dict[str, Any]:
    """The full snapshot for ``user`` over ``account_ids``."""
    streams = [realtime.stream_for(a) for a in account_ids] + [realtime.GLOBAL_STREAM]
    seqs = read_seqs(redis, streams)  # first: the state read below includes these
    accounts = list(Account.objects.filter(pk__in=account_ids).order_by("code"))
    instruments = list(Instrument.objects.order_by("symbol"))
    symbols = [i.symbol for i in instruments]
    orders_qs = Order.objects.select_related("account", "instrument", "venue").filter(
        account_id__in=account_ids
    )
    terminal = [s.value for s in TERMINAL_STATUSES]
    working = list(orders_qs.filter(~Q(status__in=terminal)).order_by("-id")[:MAX_WORKING_ORDERS])
    seen = {o.pk for o in working}
    recent = [o for o in orders_qs.order_by("-id")[:RECENT_ORDERS] if o.pk not in seen]
    fills = list(
        Fill.objects.select_related("account", "instrument", "venue", "order")
        .filter(account_id__in=account_ids)
        .order_by("-id")[:RECENT_FILLS]
    )
    positions = list(
        Position.objects.select_related("account", "instrument")
        .filter(account_id__in=account_ids)
        .order_by("account__code", "instrument__symbol")
    )
    venues = venue_rows()
    return {
        "type": "snapshot",
        "server_time": time.time(),
        "seqs": seqs,
        "user": user_info(user),
        "accounts": [{"id": a.pk, "code": a.code, "name": a.name} for a in accounts],
        "instruments": [instrument_info(i) for i in instruments],
        "venues": venue_states(redis, venues, symbols),
        "marks": read_marks(redis, symbols),
        "quotes": read_quotes(redis, venues, symbols),
        "trading_state": trading_state(account_ids),
        "orders": [order_payload(o) for o in working + recent],
        "fills": [fill_payload(f, order=f.order) for f in fills],
        "positions": [position_payload(p) for p in positions],
        "limits": {
            "working_orders": MAX_WORKING_ORDERS,
            "recent_orders": RECENT_ORDERS,
            "fills": RECENT_FILLS,
        },
    }


def publish_venue_status(venue: Venue, *, detail: str = "") -> dict[str, Any]:
    """Push a ``venue.status`` event to every blotter now (call it when a venue's
    breaker opens or closes, a rate-limit pause starts, or the row is enabled or
    disabled); returns the payload. Clients also refresh venue state every second from
    the tick, so a missed call only delays the news by a second."""
    from omsweb.redis_client import client

    row = {"name": venue.name, "driver": venue.driver, "enabled": venue.enabled,
           "rate_limits": getattr(venue, "rate_limits", None)}  # fmt: skip
    symbols = list(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))
    state = venue_states(client(), [row], symbols)[0]
    if detail:
        state["detail"] = detail
    realtime.publish_on_commit("venue.status", account_id=None, **state)
    return state
