"""Reconciliation: make the OMS agree with what a venue says, and record the run.

A run, per venue (on a schedule, at worker start-up, and when the venue comes back):

1. **Missed fills**: our trades at the venue since a cursor (kept in Redis, first run
   looks back a day) are applied through ``execution_apply``; fills already stored are
   skipped by the ``(venue, trade id)`` key, so re-reading is harmless.
2. **Orders the OMS thinks are working but the venue does not list as open** are settled
   by asking the venue for their client order id (``venue_calls.sync_from_venue``): filled,
   canceled or expired states are applied; one the venue never received is handed to
   the orders queue to be re-sent with the same id (only when SUBMITTED and past the
   receive window), one it no longer has is closed.
3. **Orders open at the venue that the OMS does not know** (placed behind its back) are
   stored as ``UnknownVenueOrder`` rows, shown in the admin and the API, where an
   operator cancels or adopts them; ones no longer open are marked GONE.

Each run is stored as a ``ReconciliationRun`` with what it found and fixed.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

import audit
from omsweb import alerts, metrics
from orders import engine, venue_calls
from orders.domain.errors import OrderStateConflict
from orders.domain.lifecycle import WORKING_STATUSES
from orders.models import Instrument, Order, ReconciliationRun, UnknownVenueOrder
from orders.reports import fill_report
from venues.base import VenueError, VenueOrder
from venues.models import Venue

log = logging.getLogger(__name__)

LOOKBACK_MS = 24 * 3600 * 1000
OVERLAP_MS = 60_000
OPERATOR_STREAM = "operator"  # operators' decisions, in the audit trail
IN_FLIGHT_GRACE = timedelta(seconds=5)  # a just-sent order may not be listed yet


def _cursor_key(venue: Venue, symbol: str) -> str:
    return f"oms:recon:{venue.name}:{symbol}:since"


def reconcile_venue(venue_id: int, *, trigger: str = "schedule") -> ReconciliationRun:
    from omsweb.redis_client import client

    venue = Venue.objects.get(pk=venue_id)
    run = ReconciliationRun.objects.create(venue=venue, trigger=trigger)
    found: dict[str, Any] = {"open_at_venue": 0, "working_in_oms": 0, "missing_at_venue": []}
    fixed: dict[str, Any] = {
        "missed_fills": 0,
        "settled": [],
        "unsettled": [],
        "resend_queued": [],
    }
    redis = client()
    try:
        adapter = venue_calls.adapter_for(venue)
        symbols = list(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))
        # by (symbol, venue order id): venues such as Binance number orders per symbol
        open_at_venue: dict[tuple[str, str], VenueOrder] = {}
        for symbol in symbols:
            for order in adapter.fetch_open_orders(symbol):
                open_at_venue[(symbol, order.venue_order_id)] = order
        found["open_at_venue"] = len(open_at_venue)

        for symbol in symbols:
            fixed["missed_fills"] += _apply_missed_fills(venue, adapter, symbol, redis)

        cutoff = engine.clock() - IN_FLIGHT_GRACE
        working = Order.objects.filter(
            venue=venue, status__in=[s.value for s in WORKING_STATUSES]
        ).values_list("pk", "instrument__symbol", "venue_order_id", "status", "updated_at")
        for pk, symbol, venue_order_id, status, updated_at in working:
            found["working_in_oms"] += 1
            if venue_order_id and (symbol, venue_order_id) in open_at_venue:
                continue
            if updated_at > cutoff:
                continue  # in flight: its own task is settling it
            found["missing_at_venue"].append(pk)
            not_found = "keep" if status == "SUBMITTED" else "canceled"
            outcome = venue_calls.sync_from_venue(pk, not_found=not_found)
            if outcome.not_found:
                # Sent, never received: re-sent (same id) by the orders queue, which
                # asks the venue once more first; a send is never made inside a run.
                _queue_resend(pk)
                fixed["resend_queued"].append(pk)
            else:
                (fixed["settled"] if outcome.done else fixed["unsettled"]).append(pk)

        found["unknown_at_oms"] = _surface_unknown(venue, open_at_venue)
        run.status = "ok"
    except VenueError as exc:
        run.status, run.error = "failed", exc.reason
    except Exception as exc:  # recorded on the run; the next run tries again
        log.exception("reconciliation of %s failed", venue.name)
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
    run.found, run.fixed, run.finished_at = found, fixed, timezone.now()
    run.save(update_fields=["status", "error", "found", "fixed", "finished_at"])
    _report_findings(run)
    return run


def _report_findings(run: ReconciliationRun) -> None:
    """Each difference found is counted in ``/metrics``; a run with any is an alert."""
    findings = {
        "missed_fills": int(run.fixed.get("missed_fills") or 0),
        "missing_at_venue": len(run.found.get("missing_at_venue") or []),
        "unknown_at_oms": len(run.found.get("unknown_at_oms") or []),
    }
    findings = {kind: n for kind, n in findings.items() if n}
    for kind, n in findings.items():
        metrics.RECONCILIATION_FINDINGS.labels(venue=run.venue.name, kind=kind).inc(n)
    if findings:
        alerts.alert(alerts.RECONCILIATION_MISMATCH, venue=run.venue.name, run=run.pk, **findings)


def _queue_resend(order_id: int) -> None:
    engine.queue("oms.orders.resend", order_id)


def _apply_missed_fills(venue: Venue, adapter: Any, symbol: str, redis: Any) -> int:
    key = _cursor_key(venue, symbol)
    raw = redis.get(key)
    now_ms = int(time.time() * 1000)
    since = int(raw) - OVERLAP_MS if raw else now_ms - LOOKBACK_MS
    applied = 0
    newest = since
    for trade in adapter.fetch_trades(symbol=symbol, since_ms=since, limit=1000):
        if trade.timestamp is not None:
            newest = max(newest, int(trade.timestamp.timestamp() * 1000))
        order = engine.find_order(
            venue_id=venue.pk, symbol=symbol, venue_order_id=trade.venue_order_id
        )
        if order is None:
            continue
        (result,) = engine.process(order.pk, [fill_report(trade, source="recon")])
        applied += int(result.applied)
    redis.set(key, max(newest, since + OVERLAP_MS))
    return applied


def _surface_unknown(venue: Venue, open_at_venue: dict[tuple[str, str], VenueOrder]) -> list[str]:
    unknown = []
    working = {s.value for s in WORKING_STATUSES}
    for (symbol, venue_order_id), order in open_at_venue.items():
        known = engine.find_order(venue_id=venue.pk, symbol=symbol, venue_order_id=venue_order_id)
        if known is None and order.client_order_id:
            # Matched by client order id only (not yet acknowledged, or an amend's
            # replacement): ours while the OMS order is working. An OMS order that is
            # closed cannot own a live venue order: surface it (an orphan) to an operator.
            by_id = engine.find_order(
                venue_id=venue.pk, symbol=symbol, client_order_id=order.client_order_id
            )
            known = by_id if by_id is not None and by_id.status in working else None
        if known:
            continue
        unknown.append(venue_order_id)
        UnknownVenueOrder.objects.update_or_create(
            venue=venue,
            venue_order_id=venue_order_id,
            defaults={
                "client_order_id": order.client_order_id or "",
                "symbol": order.symbol,
                "side": order.side,
                "type": order.type,
                "quantity": order.quantity,
                "price": order.price,
                "filled_quantity": order.filled_quantity,
                "state": UnknownVenueOrder.State.OPEN,
            },
        )
    UnknownVenueOrder.objects.filter(venue=venue, state=UnknownVenueOrder.State.OPEN).exclude(
        venue_order_id__in=[venue_order_id for _, venue_order_id in open_at_venue]
    ).update(state=UnknownVenueOrder.State.GONE)
    return unknown


# --- operator actions on unknown orders ------------------------------------------------


def unknown_cancel(*, unknown_id: int, user: str) -> UnknownVenueOrder:
    """Cancel at the venue an order the OMS did not place."""
    unknown = UnknownVenueOrder.objects.select_related("venue").get(pk=unknown_id)
    if unknown.state != UnknownVenueOrder.State.OPEN:
        raise OrderStateConflict(f"unknown order {unknown.pk} is {unknown.state}", field="state")
    adapter = venue_calls.adapter_for(unknown.venue)
    try:
        adapter.cancel_order(
            symbol=unknown.symbol,
            client_order_id=unknown.client_order_id,
            venue_order_id=unknown.venue_order_id,
        )
    except VenueError as exc:
        raise OrderStateConflict(f"venue refused the cancel: {exc.reason}") from exc
    unknown.state, unknown.resolved_by = UnknownVenueOrder.State.CANCELED, user
    with transaction.atomic():
        unknown.save(update_fields=["state", "resolved_by", "last_seen"])
        _audit("recon.unknown_cancel", user, unknown)
    return unknown


def _audit(action: str, user: Any, unknown: UnknownVenueOrder, **extra: Any) -> None:
    """An operator's decision on an unknown venue order, in the audit trail."""
    audit.record(
        OPERATOR_STREAM,
        action,
        str(user),
        {"unknown_venue_order": unknown.pk, "venue": unknown.venue.name,
         "venue_order_id": unknown.venue_order_id, "client_order_id": unknown.client_order_id,
         "symbol": unknown.symbol, **extra},
    )  # fmt: skip


def unknown_adopt(*, unknown_id: int, account: Any, user: Any) -> Order:
    """Take an unknown venue order into the OMS under ``account``: an ACCEPTED (or
    PARTIALLY_FILLED) order with the venue's ids, its past fills applied by the next run."""
    with transaction.atomic():
        unknown = (
            UnknownVenueOrder.objects.select_for_update().select_related("venue").get(pk=unknown_id)
        )
        if unknown.state != UnknownVenueOrder.State.OPEN:
            raise OrderStateConflict(
                f"unknown order {unknown.pk} is {unknown.state}", field="state"
            )
        instrument = Instrument.objects.get(symbol=unknown.symbol)
        order = engine.adopt(
            account=account,
            instrument=instrument,
            venue=unknown.venue,
            side=unknown.side,
            type=unknown.type if unknown.type in ("limit", "market") else "limit",
            quantity=unknown.quantity,
            price=unknown.price,
            venue_order_id=unknown.venue_order_id,
            venue_client_order_id=unknown.client_order_id,
            by=user,
            unknown_id=unknown.pk,
        )
        unknown.state = UnknownVenueOrder.State.ADOPTED
        unknown.adopted_order = order
        unknown.resolved_by = str(user)
        unknown.save(update_fields=["state", "adopted_order", "resolved_by", "last_seen"])
        _audit("recon.unknown_adopt", user, unknown, order=order.pk, account=str(account))
    return order
