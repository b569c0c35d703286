"""Reconciliation: compare a venue's view with ours, trusting neither, and record it.

A run, per venue (on a schedule, at worker start-up, and when the venue comes back):

1. **Fills, both ways**: our trades at the venue since a cursor (kept in Redis per
   symbol, first run looks back a day) are compared with the fills the OMS holds for
   the same window. A venue trade we had not booked is applied through the engine
   (deduplicated on ``(venue, symbol, trade id)``); a fill of ours the venue does not
   list, or one whose quantity or price differs, is a finding for an operator.
2. **Every order the venue lists as open**, whatever its OMS status: one the OMS holds
   as terminal (FILLED, CANCELED...) is a critical finding; one whose status or filled
   quantity differs is settled by asking the venue (``venue_calls.sync_from_venue``)
   and is a finding either way (resolved by the run when that settled it); one the OMS
   does not know (placed behind its back) is stored as an ``UnknownVenueOrder`` for an
   operator to cancel or adopt.
3. **Orders the OMS thinks are working but the venue does not list as open** are
   settled by asking the venue for their client order id: filled, canceled or expired
   states are applied; one the venue never received is handed to the orders queue to
   be re-sent with the same id; one it no longer has is closed, unless more than
   ``settings.RECON_MASS_MISSING_THRESHOLD`` vanished at once: then nothing is closed,
   the venue goes to REDUCING (an audited trading-state change), a critical
   ``MASS_MISSING`` finding is stored and logged (``event=recon_mass_missing``), and an
   operator confirms (``confirm_missing``) before the engine closes them.

Every difference is a ``ReconFinding`` (admin, API, blotter): seen again by a later run
it updates the open finding of the same (venue, kind, key); order findings no longer
seen are resolved by the run. Each run is stored as a ``ReconciliationRun``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from omsweb import alerts, metrics
from orders import engine, venue_calls
from orders.domain.errors import OrderStateConflict
from orders.domain.lifecycle import TERMINAL_STATUSES, WORKING_STATUSES, OrderStatus
from orders.models import (
    Fill,
    Instrument,
    Order,
    ReconciliationRun,
    ReconFinding,
    UnknownVenueOrder,
)
from orders.reports import ExecutionReport, ReportKind, fill_report
from venues.base import VenueError, VenueOrder, VenueTrade
from venues.models import Venue
from venues.registry import VenueConfigError

log = logging.getLogger(__name__)

LOOKBACK_MS = 24 * 3600 * 1000
OVERLAP_MS = 60_000
TRADES_LIMIT = 1000
OPERATOR_STREAM = "operator"  # operators' decisions, in the audit trail
IN_FLIGHT_GRACE = timedelta(seconds=5)  # a just-sent order may not be listed yet
FILL_GRACE_MS = 2_000  # a fill this fresh may not be in the venue's trade list yet
Kind, Severity = ReconFinding.Kind, ReconFinding.Severity
# Findings about orders a run checks in full each time: resolved when no longer seen.
SELF_CLEARING = (Kind.STATUS_MISMATCH, Kind.FILLED_MISMATCH, Kind.UNKNOWN_AT_OMS)
TERMINAL = {s.value for s in TERMINAL_STATUSES}
WORKING = {s.value for s in WORKING_STATUSES}
MASS_MISSING_KEY = "mass-missing"


def _cursor_key(venue: Venue, symbol: str) -> str:
    return f"oms:recon:{venue.name}:{symbol}:since"


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _fmt(value: Decimal | None) -> str:
    return "-" if value is None else format(value.normalize(), "f")


def mass_missing_threshold() -> int:
    return int(settings.RECON_MASS_MISSING_THRESHOLD)


# --- findings ----------------------------------------------------------------------------


def record_finding(
    *,
    venue: Venue,
    kind: str,
    severity: str,
    key: str,
    message: str,
    run: ReconciliationRun | None = None,
    order_id: int | None = None,
    detail: dict[str, Any] | None = None,
    fixed: str = "",
) -> tuple[ReconFinding, bool]:
    """Store one difference; ``fixed`` (what the run did about it) stores it resolved by
    ``recon``. An open finding of the same (venue, kind, key) is updated instead of a
    second one added. Returns (finding, created)."""
    now = timezone.now()
    values: dict[str, Any] = {
        "run": run,
        "order_id": order_id,
        "severity": severity,
        "message": message,
        "detail": detail or {},
    }
    if fixed:
        values.update(resolved_at=now, resolved_by="recon", resolution=fixed)
    with transaction.atomic():
        row = (
            ReconFinding.objects.select_for_update()
            .filter(venue=venue, kind=kind, key=key, resolved_at__isnull=True)
            .first()
        )
        created = row is None
        if row is None:
            try:
                with transaction.atomic():
                    row = ReconFinding.objects.create(venue=venue, kind=kind, key=key, **values)
            except IntegrityError:  # a concurrent run stored it first
                row = ReconFinding.objects.get(
                    venue=venue, kind=kind, key=key, resolved_at__isnull=True
                )
                created = False
        if not created:
            for name, value in values.items():
                setattr(row, name, value)
            row.save()
    if created and severity != Severity.INFO:
        log.warning(
            "event=recon_mismatch venue=%s kind=%s severity=%s key=%s order=%s: %s",
            venue.name, kind, severity, key, order_id, message,
        )  # fmt: skip
    return row, created


def resolve_finding(*, finding_id: int, user: str, resolution: str = "") -> ReconFinding:
    """An operator marks a finding dealt with (audited: who, when, how)."""
    with transaction.atomic():
        finding = ReconFinding.objects.select_for_update().get(pk=finding_id)
        if finding.resolved_at is not None:
            raise OrderStateConflict(f"finding {finding.pk} is resolved already", field="state")
        if finding.kind == Kind.MASS_MISSING:
            raise OrderStateConflict(
                f"finding {finding.pk} is a mass-missing alert: confirm it to close the orders",
                field="kind",
            )
        finding.resolved_at = timezone.now()
        finding.resolved_by = user
        finding.resolution = resolution.strip() or "resolved by an operator"
        finding.save(update_fields=["resolved_at", "resolved_by", "resolution", "last_seen"])
        _audit_finding("recon.finding_resolve", user, finding)
    log.info("recon finding %s resolved by %s: %s", finding.pk, user, finding.resolution)
    return finding


def _audit_finding(action: str, user: str, finding: ReconFinding) -> None:
    """An operator's decision on a finding, in the audit trail (same transaction)."""
    audit.record(
        OPERATOR_STREAM,
        action,
        user,
        {"finding": finding.pk, "venue": finding.venue.name, "kind": finding.kind,
         "key": finding.key, "order": finding.order_id,
         "orders": finding.detail.get("orders", [])},
    )  # fmt: skip


def open_findings_count() -> dict[tuple[str, str, str], int]:
    """Open findings by (venue, kind, severity): for a metrics gauge."""
    rows = (
        ReconFinding.objects.filter(resolved_at__isnull=True)
        .values_list("venue__name", "kind", "severity")
        .order_by()
    )
    return dict(Counter(rows))


# --- the run -----------------------------------------------------------------------------


@dataclass
class _Run:
    run: ReconciliationRun
    venue: Venue
    adapter: Any
    cutoff: datetime  # orders changed since are in flight: their own tasks settle them
    found: dict[str, Any] = field(default_factory=dict)
    fixed: dict[str, Any] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)  # (kind, key) found this run

    def finding(self, kind: str, severity: str, key: str, message: str, **kw: Any) -> None:
        self.seen.add((kind, key))
        record_finding(
            venue=self.venue, run=self.run, kind=kind, severity=severity, key=key,
            message=message, **kw,
        )  # fmt: skip
        self.found["findings"] = self.found.get("findings", 0) + 1


def reconcile_venue(venue_id: int, *, trigger: str = "schedule") -> ReconciliationRun:
    from omsweb.redis_client import client

    venue = Venue.objects.get(pk=venue_id)
    run = ReconciliationRun.objects.create(venue=venue, trigger=trigger)
    r = _Run(run=run, venue=venue, adapter=None, cutoff=engine.clock() - IN_FLIGHT_GRACE)
    r.found = {"open_at_venue": 0, "working_in_oms": 0, "missing_at_venue": [], "findings": 0}
    r.fixed = {"missed_fills": 0, "settled": [], "unsettled": [], "resend_queued": []}
    redis = client()
    try:
        r.adapter = venue_calls.adapter_for(venue)
        symbols = list(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))
        # by (symbol, venue order id): venues such as Binance number orders per symbol
        open_at_venue: dict[tuple[str, str], VenueOrder] = {}
        for symbol in symbols:
            for order in r.adapter.fetch_open_orders(symbol):
                open_at_venue[(symbol, order.venue_order_id)] = order
        r.found["open_at_venue"] = len(open_at_venue)

        for symbol in symbols:
            _compare_fills(r, symbol, redis)
        r.found["unknown_at_oms"] = _compare_open_orders(r, open_at_venue)
        _settle_missing(r, open_at_venue)
        _clear_unseen(r)
        run.status = "ok"
    except VenueError as exc:
        run.status, run.error = "failed", exc.reason
    except Exception as exc:  # recorded on the run; the next run tries again
        log.exception("reconciliation of %s failed", venue.name)
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"
    run.found, run.fixed, run.finished_at = r.found, r.fixed, timezone.now()
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


def _compare_fills(r: _Run, symbol: str, redis: Any) -> None:
    """The venue's trades of the window against the OMS's fills of the same window:
    trades we lack are applied, fills the venue lacks or disagrees on are findings."""
    key = _cursor_key(r.venue, symbol)
    raw = redis.get(key)
    now_ms = int(time.time() * 1000)
    since = int(raw) - OVERLAP_MS if raw else now_ms - LOOKBACK_MS
    trades: list[VenueTrade] = r.adapter.fetch_trades(
        symbol=symbol, since_ms=since, limit=TRADES_LIMIT
    )
    stamps = [_ms(t.timestamp) for t in trades if t.timestamp is not None]
    newest = max([since, *stamps])
    # The window both sides are compared over: up to the newest trade listed when the
    # venue cut the list at the limit, else up to now (less a moment for listing lag).
    until = newest if len(trades) >= TRADES_LIMIT else now_ms - FILL_GRACE_MS
    for trade in trades:
        order = engine.find_order(
            venue_id=r.venue.pk, symbol=symbol, venue_order_id=trade.venue_order_id
        )
        if order is None:
            continue  # a trade of an order we do not know: surfaced as unknown if open
        (result,) = engine.process(order.pk, [fill_report(trade, source="recon")])
        if result.applied:
            r.fixed["missed_fills"] += 1
            r.finding(
                Kind.FILL_MISSING_IN_OMS, Severity.WARNING, f"{symbol}:{trade.trade_id}",
                f"trade {trade.trade_id} of order {order.pk} ({_fmt(trade.quantity)} @ "
                f"{_fmt(trade.price)}) was at {r.venue.name} but not in the OMS",
                order_id=order.pk, fixed="fill applied",
                detail={"trade_id": trade.trade_id, "quantity": _fmt(trade.quantity),
                        "price": _fmt(trade.price)},
            )  # fmt: skip
    by_id = {t.trade_id: t for t in trades}
    ours = Fill.objects.filter(
        venue=r.venue,
        instrument__symbol=symbol,
        executed_at__gte=_dt(since),
        executed_at__lte=_dt(until),
    ).values_list("order_id", "venue_trade_id", "quantity", "price")
    for order_id, trade_id, quantity, price in ours:
        trade = by_id.get(trade_id)
        ref = f"{symbol}:{trade_id}"
        if trade is None:
            r.finding(
                Kind.FILL_MISSING_AT_VENUE, Severity.CRITICAL, ref,
                f"fill {trade_id} of order {order_id} ({_fmt(quantity)} @ {_fmt(price)}) "
                f"is in the OMS but {r.venue.name} lists no such trade",
                order_id=order_id,
                detail={"trade_id": trade_id, "quantity": _fmt(quantity), "price": _fmt(price)},
            )  # fmt: skip
        elif trade.quantity != quantity or trade.price != price:
            r.finding(
                Kind.FILL_MISMATCH, Severity.CRITICAL, ref,
                f"fill {trade_id} of order {order_id}: OMS {_fmt(quantity)} @ {_fmt(price)}, "
                f"{r.venue.name} {_fmt(trade.quantity)} @ {_fmt(trade.price)}",
                order_id=order_id,
                detail={"trade_id": trade_id, "oms": [_fmt(quantity), _fmt(price)],
                        "venue": [_fmt(trade.quantity), _fmt(trade.price)]},
            )  # fmt: skip
    redis.set(key, max(newest, since + OVERLAP_MS))


def _compare_open_orders(r: _Run, open_at_venue: dict[tuple[str, str], VenueOrder]) -> list[str]:
    """Status and filled quantity of every order the venue lists as open, whatever its
    OMS status; the ones the OMS does not know are surfaced. Returns their ids."""
    unknown = []
    for (symbol, venue_order_id), listed in open_at_venue.items():
        known = engine.find_order(venue_id=r.venue.pk, symbol=symbol, venue_order_id=venue_order_id)
        if known is None and listed.client_order_id:
            # Matched by client order id only (not yet acknowledged, or an amend's
            # replacement): ours while the OMS order is working. A closed OMS order
            # whose id now names another live venue order does not own it: unknown.
            by_id = engine.find_order(
                venue_id=r.venue.pk, symbol=symbol, client_order_id=listed.client_order_id
            )
            known = by_id if by_id is not None and by_id.status in WORKING else None
        if known is None:
            unknown.append(venue_order_id)
            _surface_unknown(r, symbol, listed)
            continue
        if known.updated_at > r.cutoff:
            continue  # in flight: its own task is settling it
        _compare_order(r, known, symbol, listed)
    gone = [
        pk
        for pk, symbol, venue_order_id in UnknownVenueOrder.objects.filter(
            venue=r.venue, state=UnknownVenueOrder.State.OPEN
        ).values_list("pk", "symbol", "venue_order_id")
        if (symbol, venue_order_id) not in open_at_venue
    ]
    UnknownVenueOrder.objects.filter(pk__in=gone).update(state=UnknownVenueOrder.State.GONE)
    return unknown


def _compare_order(r: _Run, order: Order, symbol: str, listed: VenueOrder) -> None:
    key = f"{symbol}:{listed.venue_order_id}"
    at_venue = (
        f"{listed.status.value} at {r.venue.name}, filled {_fmt(listed.filled_quantity)} "
        f"of {_fmt(listed.quantity)}"
    )
    detail = {
        "venue_order_id": listed.venue_order_id,
        "client_order_id": listed.client_order_id,
        "oms_status": order.status,
        "oms_filled": _fmt(order.filled_quantity),
        "venue_status": listed.status.value,
        "venue_filled": _fmt(listed.filled_quantity),
    }
    if order.status in TERMINAL:
        # The lifecycle cannot reopen it: an operator must look (cancel at the venue,
        # or correct the OMS).
        r.finding(
            Kind.STATUS_MISMATCH, Severity.CRITICAL, key,
            f"order {order.pk} ({order.client_order_id}) is {order.status} in the OMS "
            f"but {at_venue}",
            order_id=order.pk, detail=detail,
        )  # fmt: skip
        return
    if order.filled_quantity == listed.filled_quantity and order.status != "SUBMITTED":
        return
    kind = Kind.STATUS_MISMATCH if order.status == "SUBMITTED" else Kind.FILLED_MISMATCH
    was = f"{order.status}, filled {_fmt(order.filled_quantity)}"
    outcome = venue_calls.sync_from_venue(order.pk, not_found="keep")
    after = Order.objects.get(pk=order.pk)
    detail["oms_after"] = [after.status, _fmt(after.filled_quantity)]
    if after.filled_quantity == listed.filled_quantity and after.status != "SUBMITTED":
        r.fixed["settled"].append(order.pk)
        r.finding(
            kind, Severity.INFO, key,
            f"order {order.pk} was {was} in the OMS but {at_venue}",
            order_id=order.pk, detail=detail,
            fixed=f"settled from the venue: {after.status}, filled {_fmt(after.filled_quantity)}",
        )  # fmt: skip
        return
    r.fixed["unsettled"].append(order.pk)
    severity = (
        Severity.CRITICAL if after.filled_quantity > listed.filled_quantity else Severity.WARNING
    )
    r.finding(
        kind, severity, key,
        f"order {order.pk} is {after.status}, filled {_fmt(after.filled_quantity)} in the OMS "
        f"but {at_venue}" + (f" ({outcome.detail})" if outcome.detail else ""),
        order_id=order.pk, detail=detail,
    )  # fmt: skip


def _surface_unknown(r: _Run, symbol: str, order: VenueOrder) -> None:
    unknown, _ = UnknownVenueOrder.objects.update_or_create(
        venue=r.venue,
        symbol=symbol,
        venue_order_id=order.venue_order_id,
        defaults={
            "client_order_id": order.client_order_id or "",
            "side": order.side,
            "type": order.type,
            "quantity": order.quantity,
            "price": order.price,
            "filled_quantity": order.filled_quantity,
            "state": UnknownVenueOrder.State.OPEN,
        },
    )
    r.finding(
        Kind.UNKNOWN_AT_OMS, Severity.WARNING, f"{symbol}:{order.venue_order_id}",
        f"{order.side} {_fmt(order.quantity)} {symbol} @ {_fmt(order.price)} is open at "
        f"{r.venue.name} (client id {order.client_order_id or '-'}) but the OMS did not "
        f"place it: cancel or adopt unknown order {unknown.pk}",
        detail={"unknown_order": unknown.pk, "client_order_id": order.client_order_id},
    )  # fmt: skip


def _settle_missing(r: _Run, open_at_venue: dict[tuple[str, str], VenueOrder]) -> None:
    """Orders working in the OMS that the venue does not list as open."""
    vanished: list[int] = []
    working = Order.objects.filter(venue=r.venue, status__in=WORKING).values_list(
        "pk", "instrument__symbol", "venue_order_id", "status", "updated_at"
    )
    for pk, symbol, venue_order_id, status, updated_at in working:
        r.found["working_in_oms"] += 1
        if venue_order_id and (symbol, venue_order_id) in open_at_venue:
            continue
        if updated_at > r.cutoff:
            continue  # in flight: its own task is settling it
        r.found["missing_at_venue"].append(pk)
        outcome = venue_calls.sync_from_venue(pk, not_found="keep")
        if not outcome.not_found:
            (r.fixed["settled"] if outcome.done else r.fixed["unsettled"]).append(pk)
        elif status == OrderStatus.SUBMITTED.value:
            # Sent, never received: re-sent (same id) by the orders queue, which asks
            # the venue once more first; a send is never made inside a run.
            _queue_resend(pk)
            r.fixed["resend_queued"].append(pk)
        else:
            vanished.append(pk)
    if not vanished:
        return
    alert = ReconFinding.objects.filter(
        venue=r.venue, kind=Kind.MASS_MISSING, resolved_at__isnull=True
    ).first()
    if alert is not None or len(vanished) > mass_missing_threshold():
        _mass_missing(r, vanished, alert)
        return
    for pk in vanished:
        _close_missing(pk, reason=f"not found at {r.venue.name}")
        r.fixed["settled"].append(pk)
        r.finding(
            Kind.MISSING_AT_VENUE, Severity.WARNING, f"order:{pk}",
            f"order {pk} was working in the OMS but {r.venue.name} no longer has it",
            order_id=pk, fixed="closed as CANCELED",
        )  # fmt: skip


def _close_missing(order_id: int, *, reason: str) -> bool:
    report = ExecutionReport(kind=ReportKind.CANCELED, source="recon", reason=reason)
    (result,) = engine.process(order_id, [report])
    return result.applied


def _mass_missing(r: _Run, vanished: list[int], alert: ReconFinding | None) -> None:
    """Too many working orders gone at once (a venue restart, a wrong account): close
    none; the venue goes to REDUCING and an operator confirms (``confirm_missing``)."""
    from risk import services
    from risk.models import Source

    before = set(alert.detail.get("orders", [])) if alert is not None else set()
    orders = sorted(before | set(vanished))
    threshold = mass_missing_threshold()
    r.found["mass_missing"] = vanished
    r.seen.add((Kind.MASS_MISSING, MASS_MISSING_KEY))
    message = (
        f"{len(orders)} working orders are no longer known to {r.venue.name} "
        f"(more than {threshold} at once): none closed, venue set to REDUCING; "
        "confirm to close them"
    )
    finding, created = record_finding(
        venue=r.venue, run=r.run, kind=Kind.MASS_MISSING, severity=Severity.CRITICAL,
        key=MASS_MISSING_KEY, message=message,
        detail={"orders": orders, "threshold": threshold},
    )  # fmt: skip
    if set(orders) == before:
        return  # the same alert, still waiting for the operator
    log.warning(
        "event=recon_mass_missing venue=%s missing=%d threshold=%d finding=%s orders=%s",
        r.venue.name, len(orders), threshold, finding.pk, orders[:50],
    )  # fmt: skip
    actor = services.Actor(user=None, name="reconciliation", role="system", source=Source.SYSTEM)
    services.trading_state_set(
        actor=actor,
        scope="venue",
        venue=r.venue,
        state="REDUCING",
        reason=f"reconciliation: {len(orders)} working orders missing at {r.venue.name} "
        f"(finding {finding.pk}); waiting for an operator to confirm",
        escalate_only=True,
        detail={"recon_finding": finding.pk, "orders": orders[:200]},
    )


@dataclass(frozen=True)
class Confirmation:
    finding: ReconFinding
    closed: list[int]
    settled: list[int]  # the venue knew it after all: brought to the venue's state
    unsettled: list[int]  # the venue could not be asked: the next run sees them again


def confirm_missing(*, finding_id: int, user: str) -> Confirmation:
    """An operator confirms a mass-missing alert: each order still working is asked of
    the venue once more and, if it is still unknown there, closed through the engine as
    CANCELED (its event names who confirmed). The finding is resolved; the venue stays
    REDUCING until someone releases it (an explicit, audited action)."""
    with transaction.atomic():
        finding = ReconFinding.objects.select_for_update().get(pk=finding_id)
        if finding.kind != Kind.MASS_MISSING:
            raise OrderStateConflict(f"finding {finding.pk} is not a mass-missing alert",
                                     field="kind")  # fmt: skip
        if finding.resolved_at is not None:
            raise OrderStateConflict(f"finding {finding.pk} is resolved already", field="state")
        finding.resolved_at = timezone.now()  # claimed: a second confirmation conflicts
        finding.resolved_by = user
        finding.save(update_fields=["resolved_at", "resolved_by", "last_seen"])
        _audit_finding("recon.mass_missing_confirm", user, finding)
    closed, settled, unsettled = [], [], []
    venue_name = finding.venue.name
    for pk in finding.detail.get("orders", []):
        if not Order.objects.filter(pk=pk, status__in=WORKING).exists():
            continue
        outcome = venue_calls.sync_from_venue(pk, not_found="keep")
        if outcome.not_found:
            reason = f"not found at {venue_name}; closed on confirmation by {user}"
            _close_missing(pk, reason=f"{reason} (finding {finding.pk})")
            closed.append(pk)
        else:
            (settled if outcome.done else unsettled).append(pk)
    finding.resolution = (
        f"confirmed by {user}: {len(closed)} closed, {len(settled)} found at the venue, "
        f"{len(unsettled)} not settled"
    )
    finding.detail = {
        **finding.detail,
        "confirmation": {"by": user, "closed": closed, "settled": settled, "unsettled": unsettled},
    }
    finding.save(update_fields=["resolution", "detail", "last_seen"])
    log.warning(
        "event=recon_mass_missing_confirmed venue=%s finding=%s by=%s closed=%d",
        venue_name, finding.pk, user, len(closed),
    )  # fmt: skip
    return Confirmation(finding=finding, closed=closed, settled=settled, unsettled=unsettled)


def _clear_unseen(r: _Run) -> None:
    """Order findings a full run no longer sees are over (canceled at the venue,
    settled, adopted): resolved by the run."""
    stale = [
        pk
        for pk, kind, key in ReconFinding.objects.filter(
            venue=r.venue, kind__in=SELF_CLEARING, resolved_at__isnull=True
        ).values_list("pk", "kind", "key")
        if (kind, key) not in r.seen
    ]
    ReconFinding.objects.filter(pk__in=stale).update(
        resolved_at=timezone.now(), resolved_by="recon",
        resolution=f"no longer seen by run {r.run.pk}",
    )  # fmt: skip


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
    """Take an unknown venue order into the OMS under ``account``: an ACCEPTED order with
    the venue's ids, then its earlier fills from the venue's trades for that order
    (PARTIALLY_FILLED when it had traded)."""
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
    _import_fills(order, unknown)
    return order


def _import_fills(order: Order, unknown: UnknownVenueOrder) -> int:
    """The adopted order's trades before adoption, from the venue's trade list (looked up
    from a day before it was first seen), applied through the engine: deduplicated on
    (venue, symbol, trade id), so a trade the next run reads again is not booked twice.
    A venue that cannot answer now leaves them to reconciliation (a finding if the
    filled quantities still differ)."""
    since = _ms(unknown.first_seen) - LOOKBACK_MS
    try:
        trades = venue_calls.adapter_for(unknown.venue).fetch_trades(
            symbol=unknown.symbol, since_ms=since, limit=TRADES_LIMIT
        )
    except (VenueError, VenueConfigError) as exc:
        log.warning("adopted order %s: its earlier fills not read: %s", order.pk, exc)
        return 0
    mine = [t for t in trades if t.venue_order_id == unknown.venue_order_id]
    mine.sort(key=lambda t: t.timestamp or datetime.min.replace(tzinfo=UTC))
    results = engine.process(order.pk, [fill_report(t, source="recon") for t in mine])
    return sum(1 for result in results if result.applied)
