"""What the order tasks do: call the venue adapter, turn its answer into execution
reports, apply them through ``orders.services``.

No database lock is held while a venue is called: the order is moved to SUBMITTED (or
PENDING_CANCEL / PENDING_REPLACE) and committed first, then the venue is called, then
the answer is applied under the lock. A crash between the two leaves the order in a
pending state that the in-doubt resolution (``resolve_order``) settles by asking the
venue for the client order id, never by sending again blindly.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from orders import rows, services
from orders.domain.lifecycle import OrderStatus
from orders.models import Fill, Order
from orders.reports import ExecutionReport, ReportKind
from venues import base
from venues.base import (
    OrderRequest,
    SendWithdrawn,
    VenueError,
    VenueInDoubt,
    VenueOrder,
    VenueOrderNotFound,
    VenueOrderStatus,
    VenueRateLimited,
    VenueRejected,
    VenueUnavailable,
)
from venues.ccxt_adapter import RECV_WINDOW_MS
from venues.guard import MAX_WAIT_S as GUARD_MAX_WAIT_S
from venues.guard import GuardedAdapter, guarded_adapter, last_guard

log = logging.getLogger(__name__)

# An order the venue says it never received is re-sent only this long after it was last
# marked sent: past the venue's receive window (recvWindow) a delayed copy of the first
# send is refused by the venue, so the re-send cannot make a second execution. The
# request is signed (its timestamp taken) up to the guard's rate-limit wait after the
# mark, and the venue accepts timestamps up to 1 s behind its own clock: 5 + 2 + 1 s.
RESEND_MIN_AGE_S = RECV_WINDOW_MS / 1000 + GUARD_MAX_WAIT_S + 1.0


@dataclass(frozen=True)
class Outcome:
    """What a pipeline step did, for the task to decide on retries."""

    done: bool
    retry_after: float | None = None  # seconds; set when the step must be retried
    detail: str = ""
    not_found: bool = False  # the venue does not know the order


def _adapter(order: Order) -> base.VenueAdapter:
    """The order's venue, behind its cluster-wide rate limiter and circuit breaker."""
    assert order.venue is not None
    return guarded_adapter(order.venue)


def _load(order_id: int) -> Order:
    return Order.objects.select_related("instrument", "venue", "account").get(pk=order_id)


def adapter_cooldown(adapter: base.VenueAdapter) -> float:
    breaker = getattr(adapter, "breaker", None)
    return breaker.config.cooldown_s if breaker is not None else 1.0


def reports_for(order: Order, answer: VenueOrder, *, source: str) -> list[ExecutionReport]:
    """The reports that bring ``order`` to what the venue says of it, in applying order:
    ack, each trade, then a terminal cancel/expiry/rejection."""
    if answer.status == VenueOrderStatus.REJECTED:
        return [ExecutionReport(kind=ReportKind.REJECT, source=source, reason="rejected by venue")]
    reports = [
        ExecutionReport(
            kind=ReportKind.ACK,
            source=source,
            venue_order_id=answer.venue_order_id,
            client_order_id=answer.client_order_id,
        )
    ]
    for trade in answer.trades:
        reports.append(
            ExecutionReport(
                kind=ReportKind.FILL,
                source=source,
                venue_order_id=trade.venue_order_id or answer.venue_order_id,
                trade_id=trade.trade_id,
                quantity=trade.quantity,
                price=trade.price,
                fee=trade.fee,
                fee_currency=trade.fee_currency,
                is_maker=trade.is_maker,
                executed_at=trade.timestamp,
            )
        )
    if answer.status == VenueOrderStatus.CANCELED:
        reports.append(ExecutionReport(kind=ReportKind.CANCELED, source=source))
    elif answer.status == VenueOrderStatus.EXPIRED:
        if order.time_in_force in ("IOC", "FOK"):
            # Binance says EXPIRED for an IOC/FOK remainder; FIX (and a desk) says the
            # remainder was canceled.
            reports.append(
                ExecutionReport(
                    kind=ReportKind.CANCELED,
                    source=source,
                    reason=f"{order.time_in_force} remainder canceled",
                )
            )
        else:
            reports.append(
                ExecutionReport(kind=ReportKind.EXPIRED, source=source, reason="expired")
            )
    return reports


def apply_reports(order_id: int, reports: list[ExecutionReport]) -> None:
    if reports:
        services.execution_apply_batch(order_id=order_id, reports=reports)


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


def prepared_request(order: Order) -> dict[str, Any]:
    """The copy of a new order's venue request that rides with its submit task, so the
    worker can prepare the request while it marks the order (``submit``)."""
    return {"venue": order.venue_id, **request_for(order).as_payload()}


def submit(
    order_id: int, *, enqueued_at: float | None = None, prepared: dict[str, Any] | None = None
) -> Outcome:
    """Send a PENDING_NEW order. Idempotent: anything past PENDING_NEW is left alone.

    With ``prepared`` (the request as the API queued it, ``prepared_request``) the
    request is prepared while the order is marked (``_submit_while_marking``);
    without it, or when that cannot be used here, the order is marked, then sent."""
    if transaction.get_connection().in_atomic_block:  # the mark commits with the caller
        order = services.order_mark_submitted(order_id=order_id, enqueued_at=enqueued_at)
        if order is None:
            return Outcome(done=True, detail="not pending new")
        return send_to_venue(order)
    mark = services.order_send_mark_submitted(order_id=order_id, enqueued_at=enqueued_at)
    ahead = _ahead_of_mark(prepared)
    if ahead is not None:
        return _submit_while_marking(mark, *ahead)
    order = mark.result()
    if order is None:
        return Outcome(done=True, detail="not pending new")
    services.publish_order(order)
    return send_to_venue(order)


def send_to_venue(order: Order) -> Outcome:
    adapter = _adapter(order)
    # the venue's answer is applied before the guard's bookkeeping of it (one round trip
    # less between the answer and the order's ack)
    with _answers_counted_after(adapter):
        try:
            answer: VenueOrder | VenueError = adapter.submit_order(request_for(order))
        except VenueError as exc:
            answer = exc
        return _settle(order, answer)


def _answers_counted_after(adapter: base.VenueAdapter) -> contextlib.AbstractContextManager:
    later = getattr(adapter, "answers_counted_after", None)
    return later() if later is not None else contextlib.nullcontext()


def _settle(order: Order, answer: VenueOrder | VenueError) -> Outcome:
    """Apply the venue's answer to a submit (or why it was not sent) to the order as the
    mark left it."""
    if isinstance(answer, VenueUnavailable):
        # Never sent (breaker open): a definite, truthful rejection.
        apply_reports(
            order.pk,
            [ExecutionReport(kind=ReportKind.REJECT, source="worker", reason=answer.reason)],
        )
        return Outcome(done=True, detail=answer.reason)
    if isinstance(answer, VenueRejected):
        apply_reports(
            order.pk,
            [ExecutionReport(kind=ReportKind.REJECT, source="venue", reason=answer.reason)],
        )
        return Outcome(done=True, detail=answer.reason)
    if isinstance(answer, VenueRateLimited):
        # A 429/418 means the venue did not take the order: safe to send again later.
        return Outcome(done=False, retry_after=answer.retry_after or 1.0, detail=answer.reason)
    if isinstance(answer, VenueInDoubt):
        log.warning("order %s submit in doubt: %s", order.pk, answer.reason)
        return Outcome(done=False, detail=f"in doubt: {answer.reason}")
    if isinstance(answer, VenueError):
        raise answer  # not an answer a submit can have (a bug in an adapter)
    # the order as the mark left it: applied by compare-and-set, without a lock
    services.execution_apply_answer(order=order, reports=reports_for(order, answer, source="venue"))
    return Outcome(done=True)


# --- preparing the request while the mark commits -------------------------------------
#
# The mark (PENDING_NEW -> SUBMITTED, durable before anything is sent) costs a commit,
# and preparing the request costs about as much again: the guard's Redis round trip and
# the adapter's own work (ccxt checks precision, builds and signs the request). They
# need not wait for each other: the mark's statement is sent without waiting for its
# answer, the request is prepared meanwhile, and the adapter calls ``_MarkGate`` just
# before the request leaves. It leaves only once the mark has committed and the marked
# order is the one the request was prepared from; otherwise it is withdrawn
# (``SendWithdrawn``, nothing sent) and a marked order is sent the usual way.

# The longest a prepared request waits for the mark (a row lock held by a cancel, say)
# before it is withdrawn. Its signature's timestamp was taken before the mark, so the
# re-send rule (RESEND_MIN_AGE_S) still holds: the first send's copy expires sooner.
GATE_WAIT_S = 2.0


def _ahead_of_mark(prepared: dict[str, Any] | None) -> tuple[GuardedAdapter, OrderRequest] | None:
    """The guard and the request to prepare while the mark commits; None to wait for
    the mark first: no request came with the task, it is malformed, or this process
    has not used the venue yet."""
    if not prepared:
        return None
    try:
        venue_id = int(prepared["venue"])
        request = OrderRequest.from_payload(prepared)
    except (KeyError, TypeError, ValueError):
        log.warning("ignoring a malformed prepared request: %r", prepared)
        return None
    guard = last_guard(venue_id)
    return None if guard is None else (guard, request)


def _submit_while_marking(
    mark: rows.PendingMark, adapter: GuardedAdapter, request: OrderRequest
) -> Outcome:
    gate = _MarkGate(mark, adapter, request)
    with _answers_counted_after(adapter):
        try:
            answer: VenueOrder | VenueError = adapter.submit_order(request, before_send=gate)
        except VenueError as exc:  # SendWithdrawn too
            answer = exc
        finally:
            # the connection is free again only once the mark has answered; its
            # database error, if it failed, is raised here (the task retries)
            order = mark.result()
        if order is None:
            return Outcome(done=True, detail="not pending new")
        # refused before sending (breaker, rate limit, precision): holds for this order
        # if it is the order the request was prepared from
        refused = not gate.called and not isinstance(answer, SendWithdrawn)
        if gate.opened or (refused and gate.matches(order)):
            try:
                return _settle(order, answer)
            finally:
                # The SUBMITTED state is pushed after the answer's, off the path to the
                # ack: clients never replace a higher version with a lower one.
                services.publish_order(order)
    services.publish_order(order)
    return send_to_venue(order)


class _MarkGate:
    """The ``before_send`` of a request prepared while the order's mark commits: waits
    for the mark, lets the request go if the marked order is the one it was prepared
    from, else withdraws it."""

    def __init__(self, mark: rows.PendingMark, adapter: GuardedAdapter, request: OrderRequest):
        self.mark = mark
        self.adapter = adapter
        self.request = request
        self.called = False
        self.opened = False

    def __call__(self) -> None:
        self.called = True
        try:
            order = self.mark.result(timeout=GATE_WAIT_S)
        except Exception as exc:  # the mark failed, or waits on a lock held elsewhere
            raise SendWithdrawn(f"order not marked sent: {exc!r}") from exc
        if order is None:
            raise SendWithdrawn("order no longer pending new")
        if not self.matches(order):
            raise SendWithdrawn("order or venue changed since the task was queued")
        self.opened = True

    def matches(self, order: Order) -> bool:
        """Whether the request and the guard are those the marked order has now."""
        return (
            order.venue is not None
            and request_for(order) == self.request
            and guarded_adapter(order.venue) is self.adapter
        )


def cancel(order_id: int) -> Outcome:
    """Cancel at the venue an order in PENDING_CANCEL. Idempotent."""
    order = _load(order_id)
    if order.status != OrderStatus.PENDING_CANCEL.value:
        return Outcome(done=True, detail=f"status {order.status}")
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
    except VenueUnavailable as exc:
        return Outcome(done=False, retry_after=adapter_cooldown(adapter), detail=exc.reason)
    except VenueRejected as exc:
        apply_reports(
            order_id,
            [ExecutionReport(kind=ReportKind.CANCEL_REJECTED, source="venue", reason=exc.reason)],
        )
        return Outcome(done=True, detail=exc.reason)
    except VenueRateLimited as exc:
        return Outcome(done=False, retry_after=exc.retry_after or 1.0, detail=exc.reason)
    except VenueInDoubt as exc:
        return Outcome(done=False, retry_after=0.5, detail=exc.reason)
    answer = _missing_trades(order, answer, adapter)
    apply_reports(order_id, reports_for(order, answer, source="venue"))
    return Outcome(done=True)


def amend(order_id: int) -> Outcome:
    """Carry out a PENDING_REPLACE amend at the venue. Idempotent."""
    order = _load(order_id)
    if order.status != OrderStatus.PENDING_REPLACE.value:
        return Outcome(done=True, detail=f"status {order.status}")
    adapter = _adapter(order)
    new_id = f"{order.client_order_id}/{order.amend_count + 1}"
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
    except VenueRateLimited as exc:
        return Outcome(done=False, retry_after=exc.retry_after or 1.0, detail=exc.reason)
    except (VenueInDoubt, VenueOrderNotFound) as exc:
        return Outcome(done=False, detail=f"in doubt: {exc.reason}")
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
            claimed = services.order_mark_resend(order_id=order_id, min_age_s=RESEND_MIN_AGE_S)
            if claimed is None:
                age = (timezone.now() - order.updated_at).total_seconds()
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
    """A look at the venue that told nothing about the order: when to look again."""
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
    new_id = f"{order.client_order_id}/{order.amend_count + 1}"
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
