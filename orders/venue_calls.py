"""The venue work of the order tasks: call the venue adapter, turn its answer into
execution reports, hand them to the execution engine (``orders.engine.process``).

Three steps anyone can check against the rule "durable before send": the order is
marked (SUBMITTED, PENDING_CANCEL or PENDING_REPLACE) and committed first, then the
venue is called with no database lock held, then the answer is applied. A crash
between the two leaves the order in a pending state that in-doubt resolution
(``sync_from_venue``) settles by asking the venue for the client order id, never by
sending again blindly.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from omsweb import metrics
from orders import engine
from orders.domain.lifecycle import OrderStatus
from orders.models import Fill, Order
from orders.reports import ExecutionReport, ReportKind, reports_from_answer
from venues import base
from venues.base import (
    OrderRequest,
    VenueInDoubt,
    VenueOrder,
    VenueOrderNotFound,
    VenueRateLimited,
    VenueRejected,
    VenueUnavailable,
)
from venues.ccxt_adapter import RECV_WINDOW_MS
from venues.guard import MAX_WAIT_S as GUARD_MAX_WAIT_S
from venues.guard import guarded_adapter
from venues.models import Venue

log = logging.getLogger(__name__)

# An order the venue says it never received is re-sent only this long after it was last
# marked sent: past the venue's receive window (recvWindow) a delayed copy of the first
# send is refused by the venue, so the re-send cannot make a second execution. The
# request is signed (its timestamp taken) up to the guard's rate-limit wait after the
# mark, and the venue accepts timestamps up to 1 s behind its own clock: 5 + 2 + 1 s.
RESEND_MIN_AGE_S = RECV_WINDOW_MS / 1000 + GUARD_MAX_WAIT_S + 1.0

# ... and never once the order is this old (from its creation): after a long outage an
# order the venue never received is rejected as stale, not sent into a market that has
# moved on since the trader asked for it.
RESEND_MAX_AGE_S = 120.0


@dataclass(frozen=True)
class Outcome:
    """What a pipeline step did, for the task to decide on retries."""

    done: bool
    retry_after: float | None = None  # seconds; set when the step must be retried
    detail: str = ""
    not_found: bool = False  # the venue does not know the order


# The adapter of a venue row, behind its cluster-wide rate limiter and circuit breaker.
# In-process engine tests replace it with a scripted fake venue.
adapter_for: Callable[[Venue], base.VenueAdapter] = guarded_adapter


def _adapter(order: Order) -> base.VenueAdapter:
    assert order.venue is not None
    return adapter_for(order.venue)


def _load(order_id: int) -> Order:
    return Order.objects.select_related("instrument", "venue", "account").get(pk=order_id)


def adapter_cooldown(adapter: base.VenueAdapter) -> float:
    breaker = getattr(adapter, "breaker", None)
    return breaker.config.cooldown_s if breaker is not None else 1.0


def reports_for(order: Order, answer: VenueOrder, *, source: str) -> list[ExecutionReport]:
    """The reports that bring ``order`` to what the venue says of it (the pure rule is
    ``orders.reports.reports_from_answer``, which the backtester shares)."""
    return reports_from_answer(answer, time_in_force=order.time_in_force, source=source)


def apply_reports(order_id: int, reports: list[ExecutionReport]) -> None:
    engine.process(order_id, reports)


def _missing_trades(order: Order, answer: VenueOrder, adapter: base.VenueAdapter) -> VenueOrder:
    """When the venue reports more filled than the trades we hold, fetch the trades."""
    known = sum((t.quantity for t in answer.trades), Decimal(0))
    if answer.filled_quantity <= max(known, Decimal(0)) or not answer.venue_order_id:
        return answer
    have = set(Fill.objects.filter(order=order).values_list("venue_trade_id", flat=True)) | {
        t.trade_id for t in answer.trades
    }
    stored = sum(Fill.objects.filter(order=order).values_list("quantity", flat=True), Decimal(0))
    if stored >= answer.filled_quantity:
        return answer
    since = int((order.created_at - timedelta(minutes=1)).timestamp() * 1000)
    trades = [
        t
        for t in adapter.fetch_trades(symbol=order.instrument.symbol, since_ms=since)
        if t.venue_order_id == answer.venue_order_id and t.trade_id not in have
    ]
    return VenueOrder(**{**answer.__dict__, "trades": (*answer.trades, *trades)})


def request_for(order: Order) -> OrderRequest:
    """The venue request of a new order."""
    return OrderRequest(
        client_order_id=order.venue_client_order_id or order.client_order_id,
        symbol=order.instrument.symbol,
        side=order.side,
        type=order.type,
        quantity=order.quantity,
        price=order.price,
        time_in_force=order.time_in_force,
    )


def submit(order_id: int, *, enqueued_at: float | None = None) -> Outcome:
    """Send a PENDING_NEW order: mark it SUBMITTED (committed), call the venue, apply
    the answer. Idempotent: an order past PENDING_NEW is left alone."""
    with engine.marked_sent(order_id, enqueued_at=enqueued_at) as order:
        if order is None:
            return Outcome(done=True, detail="not pending new")
        return send_to_venue(order)


def send_to_venue(order: Order) -> Outcome:
    adapter = _adapter(order)
    # the venue's answer is applied before the guard's bookkeeping of it (one Redis
    # round trip less between the answer and the order's ack)
    with _answers_counted_after(adapter):
        try:
            answer = adapter.submit_order(request_for(order))
        except VenueRateLimited as exc:
            # A 429/418 means the venue did not take the order: safe to send again later.
            return Outcome(done=False, retry_after=exc.retry_after or 1.0, detail=exc.reason)
        except VenueInDoubt as exc:
            log.warning("order %s submit in doubt: %s", order.pk, exc.reason)
            return Outcome(done=False, detail=f"in doubt: {exc.reason}")
        except VenueUnavailable as exc:  # never sent (breaker open): a definite rejection
            apply_reports(order.pk, [_reject("worker", exc.reason)])
            return Outcome(done=True, detail=exc.reason)
        except VenueRejected as exc:
            _answered(order)
            apply_reports(order.pk, [_reject("venue", exc.reason)])
            return Outcome(done=True, detail=exc.reason)
        _answered(order)
        apply_reports(order.pk, reports_for(order, answer, source="venue"))
        return Outcome(done=True)


def _answered(order: Order) -> None:
    """The venue answered a new order: submit -> ack latency, from the API's accept."""
    assert order.venue is not None
    metrics.SUBMIT_ACK.labels(venue=order.venue.name).observe(
        max(0.0, time.time() - order.created_at.timestamp())
    )


def _reject(source: str, reason: str) -> ExecutionReport:
    return ExecutionReport(kind=ReportKind.REJECT, source=source, reason=reason)


def _answers_counted_after(adapter: base.VenueAdapter) -> contextlib.AbstractContextManager[None]:
    later = getattr(adapter, "answers_counted_after", None)
    return later() if later is not None else contextlib.nullcontext()


def cancel(order_id: int) -> Outcome:
    """Cancel at the venue an order in PENDING_CANCEL. Idempotent."""
    order = _load(order_id)
    if order.status != OrderStatus.PENDING_CANCEL.value:
        return Outcome(done=True, detail=f"status {order.status}")
    if order.venue_id is None:  # a parent (the kill switch, a sweep): cancel its children
        return _parent_step(order_id)
    adapter = _adapter(order)
    try:
        answer = adapter.cancel_order(
            symbol=order.instrument.symbol,
            client_order_id=order.venue_client_order_id or order.client_order_id,
            venue_order_id=order.venue_order_id or None,
        )
    except VenueOrderNotFound:
        # Filled or canceled already, or never arrived: ask the venue what it knows.
        return sync_from_venue(order_id, not_found="canceled")
    except VenueRejected as exc:
        apply_reports(
            order_id,
            [ExecutionReport(kind=ReportKind.CANCEL_REJECTED, source="venue", reason=exc.reason)],
        )
        return Outcome(done=True, detail=exc.reason)
    except VenueInDoubt as exc:  # cancels are retried soon: they are the urgent work
        return Outcome(done=False, retry_after=0.5, detail=exc.reason)
    except (VenueRateLimited, VenueUnavailable) as exc:
        return _look_again(exc, adapter)
    answer = _missing_trades(order, answer, adapter)
    apply_reports(order_id, reports_for(order, answer, source="venue"))
    return Outcome(done=True)


def _parent_step(order_id: int) -> Outcome:
    """A parent's cancel or amend in flight: cancel its open children, settle it."""
    asked = engine.cancel_children(order_id)
    return Outcome(done=True, detail=f"parent: {asked} children asked to cancel")


def amend(order_id: int) -> Outcome:
    """Carry out a PENDING_REPLACE amend at the venue. Idempotent."""
    order = _load(order_id)
    if order.status != OrderStatus.PENDING_REPLACE.value:
        return Outcome(done=True, detail=f"status {order.status}")
    adapter = _adapter(order)
    new_id = f"{order.venue_base_id}/{order.amend_count + 1}"
    assert order.pending_quantity is not None
    try:
        answer = adapter.amend_order(
            symbol=order.instrument.symbol,
            client_order_id=order.venue_client_order_id or order.client_order_id,
            venue_order_id=order.venue_order_id or None,
            new_client_order_id=new_id,
            side=order.side,
            quantity=order.pending_quantity,
            price=order.pending_price,
        )
    except VenueUnavailable as exc:
        apply_reports(
            order_id,
            [ExecutionReport(kind=ReportKind.REPLACE_REJECTED, source="worker", reason=exc.reason)],
        )
        return Outcome(done=True, detail=exc.reason)
    except VenueRejected as exc:
        # The old order may be gone (cancel done, new placement refused): settle by
        # asking the venue about the old id.
        apply_reports(
            order_id,
            [ExecutionReport(kind=ReportKind.REPLACE_REJECTED, source="venue", reason=exc.reason)],
        )
        sync_from_venue(order_id, not_found="keep")
        return Outcome(done=True, detail=exc.reason)
    except (VenueRateLimited, VenueInDoubt, VenueOrderNotFound) as exc:
        return _look_again(exc, adapter)
    reports = [
        ExecutionReport(
            kind=ReportKind.REPLACED,
            source="venue",
            venue_order_id=answer.venue_order_id,
            client_order_id=answer.client_order_id or new_id,
            quantity=order.pending_quantity,
            price=order.pending_price,
        )
    ]
    reports += [r for r in reports_for(order, answer, source="venue") if r.kind != ReportKind.ACK]
    apply_reports(order_id, reports)
    return Outcome(done=True)


def sync_from_venue(order_id: int, *, not_found: str = "keep") -> Outcome:
    """Bring one order to the venue's truth by asking for its client order id.

    ``not_found`` says what a venue that never heard of the order means here:
    ``"canceled"`` (close it), ``"resend"`` (send it again with the same id: only for an
    order the venue confirms it never received) or ``"keep"`` (leave it).
    """
    order = _load(order_id)
    if order.status in {s.value for s in (OrderStatus.PENDING_NEW,)}:
        return Outcome(done=True, detail="not sent yet")
    if order.venue_id is None:  # a parent: no venue knows it; its children settle it
        return _parent_step(order_id)
    adapter = _adapter(order)
    if order.status == OrderStatus.PENDING_REPLACE.value:
        replaced = _sync_replacement(order, adapter)
        if replaced is not None:
            return replaced
    client_id = order.venue_client_order_id or order.client_order_id
    try:
        answer = adapter.fetch_order(symbol=order.instrument.symbol, client_order_id=client_id)
    except VenueOrderNotFound:
        if not_found == "canceled":
            apply_reports(
                order_id,
                [
                    ExecutionReport(
                        kind=ReportKind.CANCELED, source="recon", reason="not found at venue"
                    )
                ],
            )
            return Outcome(done=True, detail="not found at venue: closed")
        if not_found == "resend" and order.status == OrderStatus.SUBMITTED.value:
            age = (engine.clock() - order.created_at).total_seconds()
            if age > RESEND_MAX_AGE_S:
                reason = (
                    f"STALE: never reached {order.venue.name if order.venue else 'the venue'}"
                    f"; not sent again {age:.0f}s after it was placed "
                    f"(max {RESEND_MAX_AGE_S:.0f}s)"
                )
                apply_reports(order_id, [_reject("recon", reason)])
                return Outcome(done=True, detail=reason)
            claimed = engine.mark_resend(order_id, min_age_s=RESEND_MIN_AGE_S)
            if claimed is None:
                age = (engine.clock() - order.updated_at).total_seconds()
                wait = max(0.5, RESEND_MIN_AGE_S - age)
                return Outcome(done=False, retry_after=wait, detail="resend not yet safe")
            return send_to_venue(claimed)
        return Outcome(done=True, detail="not found at venue", not_found=True)
    except (VenueRateLimited, VenueUnavailable, VenueInDoubt, VenueRejected) as exc:
        return _look_again(exc, adapter)
    answer = _missing_trades(order, answer, adapter)
    reports = reports_for(order, answer, source="recon")
    if order.status == OrderStatus.PENDING_CANCEL.value and answer.is_open:
        # The venue still has it working: the cancel did not take; try again.
        return Outcome(done=False, retry_after=0.5, detail="still open at venue")
    apply_reports(order_id, reports)
    return Outcome(done=True)


def _look_again(exc: Exception, adapter: base.VenueAdapter) -> Outcome:
    """A venue call that settled nothing (rate limited, breaker open, in doubt): when
    to try again. No ``retry_after`` for an answer in doubt: the task hands the order to
    in-doubt resolution."""
    if isinstance(exc, VenueRateLimited):
        return Outcome(done=False, retry_after=exc.retry_after or 1.0, detail=exc.reason)
    if isinstance(exc, VenueUnavailable):
        return Outcome(done=False, retry_after=adapter_cooldown(adapter), detail=exc.reason)
    return Outcome(done=False, detail=getattr(exc, "reason", str(exc)))


def _sync_replacement(order: Order, adapter: base.VenueAdapter) -> Outcome | None:
    """An amend in doubt (cancel-replace): if the venue holds the replacement (the
    amend's new client order id), the order was replaced: apply that, with the new
    order's state. None when the venue does not have it: settle by the old id.

    Asked first because the old id alone would say CANCELED (its cancel is the first
    half of the amend) and leave the live replacement unknown to the OMS."""
    new_id = f"{order.venue_base_id}/{order.amend_count + 1}"
    try:
        answer = adapter.fetch_order(symbol=order.instrument.symbol, client_order_id=new_id)
    except VenueOrderNotFound:
        return None
    except (VenueRateLimited, VenueUnavailable, VenueInDoubt, VenueRejected) as exc:
        return _look_again(exc, adapter)
    answer = _missing_trades(order, answer, adapter)
    reports = [
        ExecutionReport(
            kind=ReportKind.REPLACED,
            source="recon",
            venue_order_id=answer.venue_order_id,
            client_order_id=new_id,
            quantity=order.pending_quantity,
            price=order.pending_price,
        )
    ]
    reports += [r for r in reports_for(order, answer, source="recon") if r.kind != ReportKind.ACK]
    apply_reports(order.pk, reports)
    return Outcome(done=True, detail="replacement found at venue")


def stale_submitted(age: timedelta) -> list[int]:
    """Orders sent but unanswered for longer than ``age``: in doubt."""
    cutoff = timezone.now() - age
    return list(
        Order.objects.filter(status=OrderStatus.SUBMITTED.value, updated_at__lt=cutoff).values_list(
            "pk", flat=True
        )[:500]
    )
