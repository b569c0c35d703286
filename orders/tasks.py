"""Order tasks: thin wrappers that take ids, re-read, call the pipeline, return.

Every task is idempotent because the pipeline re-reads the order under its lock and
does nothing when the work is done (status past the one the task acts on), so a
redelivery after a worker crash (acks_late + reject_on_worker_lost) is harmless.
"""

from __future__ import annotations

import random

from celery import shared_task
from django.db import InterfaceError, OperationalError

from orders import pipeline
from orders.services import ENQUEUED_AT_HEADER

# The worker's database connection was dropped by the server (a restart): the failed
# task's connection is closed after it, so a retry at once gets a fresh one.
DB_GONE = (InterfaceError, OperationalError)
DB_RETRY_S = 0.05

# Exponential backoff with full jitter, capped well under the broker visibility timeout.
MAX_COUNTDOWN = 30.0
RESEND_AFTER_LOOKS = 2


def _backoff(retries: int, hint: float | None = None) -> float:
    base = min(MAX_COUNTDOWN, 0.25 * (2**retries))
    delay = random.uniform(base / 2, base)
    return min(MAX_COUNTDOWN, max(delay, hint or 0.0))


@shared_task(
    name="oms.orders.submit",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    time_limit=60,
    soft_time_limit=45,
)
def submit_order(self, order_id: int, prepared: dict | None = None) -> str:
    """Send a PENDING_NEW order to its venue. Idempotent: no-op past PENDING_NEW.
    ``prepared``: the order's venue request as the API queued it
    (``pipeline.prepared_request``), prepared while the order is marked.

    A submit in doubt (timeout, 5xx) is not retried here: it is resolved by asking the
    venue (``resolve_order``), never by sending again blindly.
    """
    enqueued_at = getattr(self.request, ENQUEUED_AT_HEADER, None)
    try:
        outcome = pipeline.submit(order_id, enqueued_at=enqueued_at, prepared=prepared)
    except DB_GONE as exc:
        # Idempotent: if the mark did commit, the retry finds the order past PENDING_NEW
        # and the in-doubt resolution settles it with the venue.
        raise self.retry(exc=exc, countdown=DB_RETRY_S) from exc
    if outcome.done:
        return outcome.detail or "done"
    if outcome.retry_after is not None:  # rate limited: the venue did not take it
        resend_order.apply_async(
            (order_id,), countdown=_backoff(self.request.retries, outcome.retry_after)
        )
    else:
        resolve_order.apply_async((order_id,), countdown=_backoff(0, 1.0))
    return outcome.detail


@shared_task(
    name="oms.orders.resend",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    time_limit=60,
)
def resend_order(self, order_id: int) -> str:
    """Re-send a SUBMITTED order the venue did not take (rate limited) or confirms it
    never received; same client order id. Idempotent: asks the venue first."""
    outcome = pipeline.sync_from_venue(order_id, not_found="resend")
    if not outcome.done:
        raise self.retry(countdown=_backoff(self.request.retries, outcome.retry_after))
    return outcome.detail or "done"


@shared_task(
    name="oms.urgent.cancel",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=20,
    time_limit=60,
)
def cancel_order(self, order_id: int) -> str:
    """Cancel an order at its venue. Idempotent: no-op unless PENDING_CANCEL.
    Cancels keep retrying with backoff while the venue is unreachable."""
    try:
        outcome = pipeline.cancel(order_id)
    except DB_GONE as exc:
        raise self.retry(exc=exc, countdown=DB_RETRY_S) from exc
    if not outcome.done:
        raise self.retry(countdown=_backoff(self.request.retries, outcome.retry_after))
    return outcome.detail or "done"


@shared_task(
    name="oms.orders.amend",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    time_limit=60,
)
def amend_order(self, order_id: int) -> str:
    """Amend (cancel-replace or native edit) at the venue. Idempotent: no-op unless
    PENDING_REPLACE. In doubt: resolved by asking the venue."""
    outcome = pipeline.amend(order_id)
    if outcome.done:
        return outcome.detail or "done"
    if outcome.retry_after is not None:
        raise self.retry(countdown=_backoff(self.request.retries, outcome.retry_after))
    resolve_order.apply_async((order_id,), countdown=_backoff(0, 1.0))
    return outcome.detail


@shared_task(
    name="oms.recon.resolve_order",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=10,
    time_limit=60,
)
def resolve_order(self, order_id: int) -> str:
    """Settle an order in doubt by asking the venue for its client order id, with
    backoff. Idempotent: applying the venue's state twice changes nothing.

    A submit the venue still does not know after a few looks (so it was not merely
    slow to arrive) was never received: it is handed to ``resend_order`` on the orders
    queue, which asks once more and sends it again with the same client order id (the
    venue refuses it if it did get the first one after all). Sending is never done
    here: a send that times out would hold the single reconciliation worker for the
    venue's whole timeout."""
    outcome = pipeline.sync_from_venue(order_id, not_found="keep")
    if outcome.not_found and self.request.retries >= RESEND_AFTER_LOOKS:
        resend_order.apply_async((order_id,), countdown=_backoff(0, 0.5))
        return "not at venue: resend queued"
    if not outcome.done or outcome.not_found:
        raise self.retry(countdown=_backoff(self.request.retries, outcome.retry_after))
    return outcome.detail or "done"


@shared_task(
    name="oms.reports.apply",
    acks_late=True,
    reject_on_worker_lost=True,
    time_limit=30,
)
def apply_report(order_id: int, report: dict) -> str:
    """Apply one execution report from a venue stream. Idempotent: fills dedupe on
    (venue, trade id), repeated acks and cancels are no-ops."""
    from orders.reports import ExecutionReport
    from orders.services import execution_apply

    result = execution_apply(order_id=order_id, report=ExecutionReport.from_payload(report))
    return "applied" if result.applied else "skipped"


OUTBOX_AGE_S = 2.0
IN_DOUBT_AGE_S = 10.0
SWEEP_GUARD_S = 10  # a swept order is not swept again within this many seconds


def _first_sweep(kind: str, order_ids: list[int]) -> list[int]:
    """The ids not swept in the last SWEEP_GUARD_S seconds (SET NX per order), so a slow
    queue does not collect a copy of the same task on every sweep."""
    from omsweb.redis_client import client

    pipe = client().pipeline(transaction=False)
    for order_id in order_ids:
        pipe.set(f"oms:sweep:{kind}:{order_id}", 1, nx=True, ex=SWEEP_GUARD_S)
    return [i for i, fresh in zip(order_ids, pipe.execute(), strict=True) if fresh]


@shared_task(name="oms.recon.sweep_outbox", acks_late=True, time_limit=30, expires=10)
def sweep_outbox() -> int:
    """Re-enqueue the submit of PENDING_NEW orders older than a couple of seconds: a
    broker outage or a crash between commit and enqueue loses nothing. Idempotent: the
    submit task does nothing for an order already past PENDING_NEW."""
    from datetime import timedelta

    from django.utils import timezone

    from orders.models import Order

    cutoff = timezone.now() - timedelta(seconds=OUTBOX_AGE_S)
    ids = list(
        Order.objects.filter(status="PENDING_NEW", created_at__lt=cutoff)
        .order_by("id")
        .values_list("pk", flat=True)[:1000]
    )
    ids = _first_sweep("outbox", ids)
    for order_id in ids:
        submit_order.delay(order_id)
    return len(ids)


@shared_task(name="oms.recon.sweep_in_doubt", acks_late=True, time_limit=30, expires=20)
def sweep_in_doubt() -> int:
    """Ask the venue about orders SUBMITTED (or pending cancel/replace) for too long."""
    from datetime import timedelta

    from django.utils import timezone

    from orders.models import Order

    cutoff = timezone.now() - timedelta(seconds=IN_DOUBT_AGE_S)
    rows = list(
        Order.objects.filter(
            status__in=["SUBMITTED", "PENDING_CANCEL", "PENDING_REPLACE"], updated_at__lt=cutoff
        ).values_list("pk", "status")[:500]
    )
    fresh = set(_first_sweep("in_doubt", [pk for pk, _ in rows]))
    rows = [(pk, status) for pk, status in rows if pk in fresh]
    for order_id, status in rows:
        if status == "PENDING_CANCEL":
            cancel_order.delay(order_id)  # idempotent; asks the venue if it is gone
        else:
            resolve_order.delay(order_id)
    return len(rows)


@shared_task(name="oms.recon.reconcile_venue", acks_late=True, time_limit=120, expires=60)
def reconcile_venue(venue_id: int, trigger: str = "recovery") -> str:
    """Reconcile one venue (see orders/reconcile.py). Idempotent: every fix it applies
    is itself idempotent (fills dedupe, states re-read under lock)."""
    from orders.reconcile import reconcile_venue as run

    result = run(venue_id, trigger=trigger)
    return f"{result.status}: {result.found} {result.fixed}"


@shared_task(name="oms.recon.reconcile_all", acks_late=True, time_limit=30, expires=60)
def reconcile_all(trigger: str = "schedule") -> int:
    """Enqueue a reconciliation of every enabled venue."""
    from venues.models import Venue

    ids = list(Venue.objects.filter(enabled=True).values_list("pk", flat=True))
    for venue_id in ids:
        reconcile_venue.delay(venue_id, trigger)
    return len(ids)
