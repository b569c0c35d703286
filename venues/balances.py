"""What each venue says we hold there, cached in Redis for the router (the planner caps
each child at the venue's free balance: quote currency for a buy, base for a sell).

``oms:balances:<venue>``: JSON ``{asset: free}``, written by the periodic
``oms.recon.refresh_balances`` (``routing/tasks.py``) from the venue's own answer,
expiring after ``BALANCES_TTL_S``: a venue not asked lately has no known balance (the
planner then sets no cap), never a stale one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

log = logging.getLogger(__name__)

BALANCES_KEY = "oms:balances:{venue}"
BALANCES_TTL_S = 90


def publish(redis: Any, venue: str, free: Mapping[str, Decimal]) -> None:
    body = {asset: format(amount, "f") for asset, amount in free.items()}
    redis.set(BALANCES_KEY.format(venue=venue), json.dumps(body), ex=BALANCES_TTL_S)


def read(redis: Any, venues: list[str]) -> dict[str, dict[str, Decimal] | None]:
    """Each venue's free balances by asset, None where not known (one round trip)."""
    raws = redis.mget([BALANCES_KEY.format(venue=v) for v in venues]) if venues else []
    out: dict[str, dict[str, Decimal] | None] = {}
    for venue, raw in zip(venues, raws, strict=True):
        try:
            out[venue] = {a: Decimal(v) for a, v in json.loads(raw).items()} if raw else None
        except (ValueError, TypeError, AttributeError, InvalidOperation):
            log.warning("unreadable balances of %s in Redis", venue)
            out[venue] = None
    return out


def refresh(redis: Any, venues: list[Any], adapter_for: Any) -> list[str]:
    """Ask each venue for its balances (through ``adapter_for``: the guarded adapter)
    and publish the free amounts; a venue that fails is skipped (its cache expires)."""
    done = []
    for venue in venues:
        try:
            balances = adapter_for(venue).fetch_balances()
        except Exception as exc:  # down, rate limited, misconfigured: no cap rather than stale
            log.warning("balances of %s not refreshed: %s", venue.name, exc)
            continue
        publish(redis, venue.name, {b.asset: b.free for b in balances.values()})
        done.append(venue.name)
    return done
