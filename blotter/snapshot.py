"""What a blotter client gets on connect (and whenever it asks again): the state to
start from, plus the sequence number of each of its streams as read *before* the state,
so every live event with a higher number is news and every lower one is already in.

Reads only; runs in the consumer through ``database_sync_to_async``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.db import DatabaseError
from django.db.models import Q

from blotter.payloads import fill_payload, order_payload, position_payload
from omsweb import procmgr, realtime
from omsweb.roles import ADMIN, RISK, TRADER, has_role
from orders.access import visible_accounts
from orders.domain.lifecycle import TERMINAL_STATUSES
from orders.models import Account, Fill, Instrument, Order, Position
from orders.shapes import dec
from venues.models import Venue
from venues.status import venue_states

log = logging.getLogger(__name__)

MAX_WORKING_ORDERS = 1000
RECENT_ORDERS = 200
RECENT_FILLS = 100

# Redis keys other parts write and the blotter reads (see docs/realtime.md):
MARK_KEY = "oms:mark:{symbol}"  # consolidated mid, written by `oms marketdata`


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


def read_marks(redis: Any, symbols: list[str]) -> dict[str, str]:
    if not symbols:
        return {}
    values = redis.mget([MARK_KEY.format(symbol=s) for s in symbols])
    return {s: v.decode() for s, v in zip(symbols, values, strict=True) if v}


def read_quotes(redis: Any, venues: list[dict[str, Any]], symbols: list[str]) -> dict[str, dict]:
    """The consolidated best bid and ask per symbol (LIVE venues of ``oms marketdata``),
    each with its venue."""
    from marketdata.consolidated import consolidate
    from marketdata.store import read_books

    names = [v["name"] for v in venues if v["enabled"]]
    books = read_books(redis, symbols, names) if names and symbols else []
    now = time.time()
    out: dict[str, dict] = {}
    for symbol in symbols:
        merged = consolidate(symbol, books, now, depth=1)
        bid, ask = merged.best_bid, merged.best_ask
        if bid or ask:
            out[symbol] = {
                "bid": dec(bid.price) if bid else None,
                "ask": dec(ask.price) if ask else None,
                "bid_venue": bid.venue if bid else None,
                "ask_venue": ask.venue if ask else None,
                "crossed": merged.crossed,
            }
    return out


def process_states() -> dict[str, dict[str, Any]] | None:
    """Each process ``oms up`` supervises (state, pid, uptime); None when the OMS runs
    without the process manager."""
    from django.conf import settings

    return procmgr.states(settings.OMS_HOME)


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
        "processes": process_states(),
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
