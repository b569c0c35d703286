"""Order tasks: one-line wrappers around ``orders/venue_calls.py``, made by one decorator.

``order_task`` states, once for every order task: the queue (by its name's prefix,
``omsweb/celery.py``), acks late and rejected on a lost worker (a crash redelivers),
retries with jittered backoff on a lost database connection and whenever the step says
to try again, a time limit, and what to do when the venue's answer is in doubt.

Every task is idempotent because each step re-reads the order and does nothing when the
work is done (its status is past the one the step acts on), so a redelivery after a
worker crash is harmless.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from celery import current_app, shared_task
from django.db import InterfaceError, OperationalError

from omsweb.celery import VENUE_TASKS, venue_queue
from orders import engine, venue_calls
from orders.engine import ENQUEUED_AT_HEADER, ROUTE_TASK
from orders.venue_calls import Outcome

# The worker's database connection was dropped by the server (a restart): the failed
# task's connection is closed after it, so a retry at once gets a fresh one.
DB_GONE = (InterfaceError, OperationalError)
DB_RETRY_S = 0.05

# Exponential backoff with full jitter, capped well under the broker visibility timeout.
MAX_COUNTDOWN = 30.0
RESEND_AFTER_LOOKS = 2


def route_venue_task(
    name: str, args: Any, kwargs: Any, options: dict[str, Any], task: Any = None, **kw: Any
) -> dict[str, str] | None:
    """The Celery router of ``oms.orders.*`` (``omsweb/celery.py`` ROUTES): the venue calls
    of an order go to its venue's queue. The engine names the queue when it sends (it
    has the order at hand); a task sent without one (a follow-up of a task, a sweep,
    reconciliation) is routed by its order's venue here."""
    if not name.startswith(VENUE_TASKS) or options.get("queue") or not args:
        return None
    from orders.models import Order

    venue = Order.objects.filter(pk=args[0]).values_list("venue__name", flat=True).first()
    return {"queue": venue_queue(venue)} if venue else None


def _backoff(retries: int, hint: float | None = None) -> float:
    base = min(MAX_COUNTDOWN, 0.25 * (2**retries))
    delay = random.uniform(base / 2, base)
    return min(MAX_COUNTDOWN, max(delay, hint or 0.0))


def order_task(
    name: str,
    *,
    max_retries: int,
    time_limit: int = 60,
    in_doubt: str = "retry",
    then: str = "retry",
) -> Callable[[Callable[..., Outcome]], Any]:
    """Make ``step(order_id, ...) -> Outcome`` a Celery task named ``name``.

    An outcome not done is retried with backoff (at least its ``retry_after``); with
    ``in_doubt="resolve"`` an outcome in doubt (no ``retry_after``) goes to in-doubt
    resolution instead. ``then="resend"``: a step to be tried again is handed to the
    re-send task rather than retried itself (a submit is never retried blindly)."""

    def decorate(step: Callable[..., Outcome]) -> Any:
        @shared_task(
            name=name,
            bind=True,
            acks_late=True,
            reject_on_worker_lost=True,
            max_retries=max_retries,
            time_limit=time_limit,
            soft_time_limit=time_limit - 10,
        )
        def task(self: Any, order_id: int, *args: Any) -> str:
            try:
                outcome = step(order_id, *args, **_context(self, step))
            except DB_GONE as exc:
                # Idempotent: a change that did commit is found done by the retry.
                raise self.retry(exc=exc, countdown=DB_RETRY_S) from exc
            if outcome.done:
                return outcome.detail or "done"
            if outcome.retry_after is None and in_doubt == "resolve":
                resolve_order.apply_async((order_id,), countdown=_backoff(0, 1.0))
            elif then == "resend":
                resend_order.apply_async(
                    (order_id,), countdown=_backoff(self.request.retries, outcome.retry_after)
                )
            else:
                raise self.retry(countdown=_backoff(self.request.retries, outcome.retry_after))
            return outcome.detail

        task.__doc__ = step.__doc__
        return task

    return decorate


def _context(task: Any, step: Callable[..., Outcome]) -> dict[str, Any]:
    """What a step may take from the task's request: when it was queued, its retries."""
    names = step.__code__.co_varnames[: step.__code__.co_argcount + step.__code__.co_kwonlyargcount]
    out: dict[str, Any] = {}
    if "enqueued_at" in names:
        out["enqueued_at"] = getattr(task.request, ENQUEUED_AT_HEADER, None)
    if "looks" in names:
        out["looks"] = task.request.retries
    return out


@order_task("oms.orders.submit", max_retries=8, in_doubt="resolve", then="resend")
def submit_order(order_id: int, *, enqueued_at: float | None = None) -> Outcome:
    """Send a PENDING_NEW order to its venue. Idempotent: no-op past PENDING_NEW. In
    doubt (timeout, 5xx): resolved by asking the venue, never by sending again."""
    return venue_calls.submit(order_id, enqueued_at=enqueued_at)


@order_task("oms.orders.resend", max_retries=8)
def resend_order(order_id: int) -> Outcome:
    """Re-send a SUBMITTED order the venue did not take (rate limited) or confirms it
    never received, with the same client order id. Idempotent: asks the venue first."""
    return venue_calls.sync_from_venue(order_id, not_found="resend")


@order_task("oms.urgent.cancel", max_retries=20)
def cancel_order(order_id: int) -> Outcome:
    """Cancel an order at its venue. Idempotent: no-op unless PENDING_CANCEL. Keeps
    retrying with backoff while the venue is unreachable."""
    return venue_calls.cancel(order_id)


@order_task("oms.orders.amend", max_retries=8, in_doubt="resolve")
def amend_order(order_id: int) -> Outcome:
    """Amend (cancel-replace or native edit) at the venue. Idempotent: no-op unless
    PENDING_REPLACE. In doubt: resolved by asking the venue."""
    return venue_calls.amend(order_id)


@order_task("oms.recon.resolve_order", max_retries=10)
def resolve_order(order_id: int, *, looks: int = 0) -> Outcome:
    """Settle an order in doubt by asking the venue for its client order id, with
    backoff. Idempotent: applying the venue's state twice changes nothing.

    A submit the venue still does not know after a few looks (so it was not merely
    slow to arrive) was never received: it is handed to ``resend_order`` on the orders
    queue, which asks once more and sends it again with the same client order id.
    Sending is never done here: a send that times out would hold the single
    reconciliation worker for the venue's whole timeout."""
    outcome = venue_calls.sync_from_venue(order_id, not_found="keep")
    if outcome.not_found and looks >= RESEND_AFTER_LOOKS:
        resend_order.apply_async((order_id,), countdown=_backoff(0, 0.5))
        return Outcome(done=True, detail="not at venue: resend queued")
    if outcome.not_found:
        return Outcome(done=False, detail=outcome.detail)
    return outcome


@order_task("oms.reports.apply", max_retries=8, time_limit=30)
def apply_report(order_id: int, report: dict[str, Any]) -> Outcome:
    """Apply one execution report from a venue stream. Idempotent: fills dedupe on
    (venue, trade id), repeated acks and cancels are no-ops."""
    from orders import engine
    from orders.reports import ExecutionReport

    (result,) = engine.process(order_id, [ExecutionReport.from_payload(report)])
    return Outcome(done=True, detail="applied" if result.applied else "skipped")


# --- sweeps (beat) ------------------------------------------------------------------

OUTBOX_AGE_S = 2.0
# A PENDING_NEW order whose venue queue still holds tasks is waiting its turn, not lost:
# it is sent again only past this age (no queue waits that long while its worker runs).
OUTBOX_LOST_S = 30.0
IN_DOUBT_AGE_S = 10.0
SWEEP_GUARD_S = 10  # a swept order is not swept again within this many seconds
# kombu's Redis transport keeps a queue as one list per priority step (the base name
# for priority 0, NAME + "\x06\x16" + step for the others)
_PRIORITY_KEYS = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def _first_sweep(kind: str, order_ids: list[int]) -> list[int]:
    """The ids not swept in the last SWEEP_GUARD_S seconds (SET NX per order), so a slow
    queue does not collect a copy of the same task on every sweep."""
    from omsweb.redis_client import client

    pipe = client().pipeline(transaction=False)
    for order_id in order_ids:
        pipe.set(f"oms:sweep:{kind}:{order_id}", 1, nx=True, ex=SWEEP_GUARD_S)
    return [i for i, fresh in zip(order_ids, pipe.execute(), strict=True) if fresh]


def queue_depths(queues: set[str]) -> dict[str, int]:
    """How many tasks wait in each broker queue (one pipelined round trip)."""
    from omsweb.redis_client import client

    names = sorted(queues)
    pipe = client().pipeline(transaction=False)
    for name in names:
        for suffix in _PRIORITY_KEYS:
            pipe.llen(name + suffix)
    counts = pipe.execute()
    step = len(_PRIORITY_KEYS)
    return {name: sum(counts[i * step : (i + 1) * step]) for i, name in enumerate(names)}


@shared_task(name="oms.recon.sweep_outbox", acks_late=True, time_limit=30, expires=10)
def sweep_outbox() -> int:
    """Re-enqueue the submit of PENDING_NEW orders whose task is lost: a broker outage
    or a crash between commit and enqueue loses nothing. An order older than a couple of
    seconds counts as lost when its venue's queue is empty (its task is neither waiting
    nor running: a running submit has marked it SUBMITTED), or once it is older than
    ``OUTBOX_LOST_S``; an order merely waiting behind a slow venue is left alone.
    Idempotent: the submit task does nothing for an order already past PENDING_NEW."""
    from datetime import timedelta

    from django.utils import timezone

    from orders.domain.lifecycle import OPEN_STATUSES, OrderStatus, values
    from orders.models import Order

    now = timezone.now()
    rows = list(
        Order.objects.filter(
            status=OrderStatus.PENDING_NEW.value,
            created_at__lt=now - timedelta(seconds=OUTBOX_AGE_S),
            venue__isnull=False,
        )
        .order_by("id")
        .values_list("pk", "venue__name", "created_at")[:1000]
    )
    depth = queue_depths({venue_queue(venue) for _, venue, _ in rows})
    lost_before = now - timedelta(seconds=OUTBOX_LOST_S)
    queues = {
        pk: venue_queue(venue)
        for pk, venue, created in rows
        if depth[venue_queue(venue)] == 0 or created < lost_before
    }
    ids = _first_sweep("outbox", list(queues))
    for order_id in ids:
        submit_order.apply_async((order_id,), queue=queues[order_id])
    # parents not routed yet: their route task again (idempotent: a routed parent is
    # past PENDING_NEW)
    parents = Order.objects.filter(
        status=OrderStatus.PENDING_NEW.value,
        created_at__lt=now - timedelta(seconds=OUTBOX_AGE_S),
        venue__isnull=True,
    ).values_list("pk", flat=True)[:1000]
    # working parents with no child open whose next round was lost (queued on commit
    # when their last child ended)
    idle = (
        Order.objects.filter(
            venue__isnull=True,
            status__in=(OrderStatus.ACCEPTED.value, OrderStatus.PARTIALLY_FILLED.value),
            updated_at__lt=now - timedelta(seconds=OUTBOX_LOST_S),
        )
        .exclude(children__status__in=values(OPEN_STATUSES))
        .values_list("pk", flat=True)[:1000]
    )
    routed = _first_sweep("outbox", [*parents, *idle])
    for order_id in routed:
        current_app.send_task(ROUTE_TASK, args=(order_id,))
    return len(ids) + len(routed)


@shared_task(name="oms.recon.sweep_in_doubt", acks_late=True, time_limit=30, expires=20)
def sweep_in_doubt() -> int:
    """Ask the venue about orders SUBMITTED (or pending cancel/replace) for too long."""
    from datetime import timedelta

    from django.utils import timezone

    from orders.domain import lifecycle as lc
    from orders.models import Order

    cutoff = timezone.now() - timedelta(seconds=IN_DOUBT_AGE_S)
    rows = list(
        Order.objects.filter(
            status__in=lc.values(lc.PENDING_ANSWER_STATUSES), updated_at__lt=cutoff
        ).values_list("pk", "status")[:500]
    )
    fresh = set(_first_sweep("in_doubt", [pk for pk, _ in rows]))
    for order_id, status in rows:
        if order_id not in fresh:
            continue
        if status == lc.OrderStatus.PENDING_CANCEL.value:
            cancel_order.delay(order_id)  # idempotent; asks the venue if it is gone
        else:
            resolve_order.delay(order_id)
    return len(fresh)


@shared_task(name="oms.recon.reconcile_venue", acks_late=True, time_limit=120, expires=60)
def reconcile_venue(venue_id: int, trigger: str = "recovery") -> str:
    """Reconcile one venue (see orders/reconcile.py). Idempotent: every fix it applies
    is itself idempotent (fills dedupe, states re-read under lock)."""
    from omsweb.redis_client import client
    from orders.reconcile import reconcile_venue as run
    from venues.models import Venue
    from venues.status import check_config

    problem = check_config(client(), Venue.objects.get(pk=venue_id))
    if problem:  # marked MISCONFIGURED (one WARNING); tried again on the next schedule
        return f"skipped: {problem}"
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


@shared_task(name="oms.recon.audit_checkpoint", acks_late=True, time_limit=120, expires=60)
def audit_checkpoint() -> int:
    """Anchor the order events written since the last checkpoint in the audit trail, then
    log every stream's head (``event=audit_head ...``) for safekeeping outside the
    database (see orders/chain.py). Idempotent: a checkpoint continues where the last
    one stopped, under the stream's lock; a second run finds nothing new to anchor."""
    from audit.trail import export_heads
    from orders.chain import checkpoint

    done = checkpoint()
    export_heads()
    return done["events"] if done else 0


@shared_task(
    name="oms.urgent.cancel_children",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    time_limit=60,
)
def cancel_children(self: Any, parent_id: int) -> int:
    """Cancel the open children of a parent being canceled or amended, then settle it
    (``orders.engine.cancel_children``). Idempotent: children already canceling are left
    alone and a settled parent is not changed again."""
    try:
        return engine.cancel_children(parent_id)
    except DB_GONE as exc:
        raise self.retry(exc=exc, countdown=DB_RETRY_S) from exc
