"""The kill-switch sweep: cancel every working order in the scope of a HALTED state.

Runs on the urgent queue (``oms.urgent.risk_kill_sweep``) right after the engagement
commits; new orders in scope are already denied by then. In order:

1. orders not sent yet (PENDING_NEW) are canceled in the OMS: their submit task finds
   them canceled and sends nothing;
2. per venue and symbol with working orders in scope, the venue's cancel-all (one
   request, through the venue's rate limiter cancel lane and breaker) when the adapter
   has it and the scope covers every OMS order there (an account-scope halt never
   cancels another account's orders this way); all of these before any bookkeeping;
3. each working order is marked PENDING_CANCEL by the execution engine (a
   ``CancelOrder`` without its own cancel task), then the venue's answers are applied
   through ``orders.engine.process``: CANCELED, unless the venue reports more filled
   than we know, in which case the per-order cancel task settles it with the trades.
   Batches of orders, one transaction each, a few batches at a time on their own
   database connections;
4. orders the cancel-all did not answer for (sent but not yet at the venue, venues
   without cancel-all, account scope) get the per-order cancel task, urgent queue;
5. a follow-up sweep two seconds later repeats this while the scope is still HALTED,
   and cancels-all again where it did, to catch an order that reached the venue after
   the first pass.

The venue is asked first: the point of a kill switch is that nothing keeps working at
the venue; the OMS's own bookkeeping follows within the same task.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from orders.domain import lifecycle as lc
from orders.domain.commands import CancelOrder
from orders.domain.errors import OrderStateConflict

log = logging.getLogger(__name__)

FOLLOW_UP_S = 2.0
BATCH = 25  # orders per transaction in the bookkeeping pass
BOOKKEEPING_THREADS = 4  # batches in flight at once (each waits mostly on the database)
WORKING = lc.values(lc.WORKING_STATUSES)


@dataclass
class SweepResult:
    pending_new_canceled: int = 0
    cancel_all_calls: int = 0
    canceled_at_venue: int = 0
    marked_pending_cancel: int = 0
    applied_canceled: int = 0
    per_order_cancels: int = 0
    errors: list[str] = field(default_factory=list)
    groups: list[list[int]] = field(default_factory=list)  # [venue_id, instrument_id]
    venue_seconds: float = 0.0  # until every cancel-all was answered
    venue_calls: list[dict[str, Any]] = field(default_factory=list)  # each cancel-all, timed
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _scope_filter(state: Any) -> dict[str, Any]:
    flt: dict[str, Any] = {}
    if state.venue_id:
        flt["venue_id"] = state.venue_id
    if state.account_id:
        flt["account_id"] = state.account_id
    if state.instrument_id:
        flt["instrument_id"] = state.instrument_id
    return flt


def _send_cancel_task(order_id: int) -> None:
    from omsweb.celery import app

    app.send_task("oms.urgent.cancel", args=(order_id,))


def sweep(change_id: int, *, follow_up: bool = False, groups: list[list[int]] | None = None):
    """Cancel every working order in the scope of the HALTED state of ``change_id``.

    Idempotent: orders already canceled or pending cancel are left alone, a venue's
    cancel-all with nothing open answers nothing, and a state no longer HALTED is not
    swept at all.
    """
    from orders import engine
    from orders.models import Order
    from risk.models import State, TradingStateChange
    from venues.models import Venue

    started = time.monotonic()
    result = SweepResult()
    change = TradingStateChange.objects.select_related("trading_state").get(pk=change_id)
    state = change.trading_state
    if state is None or state.state != State.HALTED:
        return {"skipped": "scope no longer HALTED"}
    reason = f"kill switch: {state.label} HALTED ({state.reason})"
    scope = _scope_filter(state)
    in_scope = Order.objects.filter(**scope)

    # 1. not sent yet: canceled here, never sent
    pending_new = in_scope.filter(status=lc.OrderStatus.PENDING_NEW.value)
    for order_id in pending_new.values_list("pk", flat=True):
        try:
            engine.execute(CancelOrder(order_id=order_id, source="risk", reason=reason))
            result.pending_new_canceled += 1
        except OrderStateConflict:
            continue  # sent or finished meanwhile: handled below or nothing to do

    # 2. working orders, by venue and symbol
    rows = list(
        in_scope.filter(status__in=WORKING).values_list(
            "pk", "venue_id", "instrument_id", "instrument__symbol", "venue_order_id",
            "venue_client_order_id", "client_order_id", "filled_quantity", "status",
        )
    )  # fmt: skip
    by_group: dict[tuple[int, int], list[tuple[Any, ...]]] = defaultdict(list)
    symbols: dict[int, str] = {}
    for row in rows:
        by_group[(row[1], row[2])].append(row)
        symbols[row[2]] = row[3]
    for venue_id, instrument_id in groups or []:
        by_group.setdefault((venue_id, instrument_id), [])
    if groups:
        from orders.models import Instrument

        symbols.update(
            Instrument.objects.filter(pk__in=[g[1] for g in groups]).values_list("pk", "symbol")
        )
    venues = {v.pk: v for v in Venue.objects.filter(pk__in={g[0] for g in by_group})}

    # 2a. the venue first: one cancel-all per venue and symbol, before any bookkeeping
    answers_by_group: dict[tuple[int, int], list[Any] | None] = {}
    for venue_id, instrument_id in by_group:
        venue = venues.get(venue_id)
        answers = None
        if venue is not None:
            answers = _venue_cancel_all(venue, symbols[instrument_id], state, instrument_id, result)
        if answers is not None:
            result.groups.append([venue_id, instrument_id])
        answers_by_group[(venue_id, instrument_id)] = answers
    result.venue_seconds = round(time.monotonic() - started, 3)

    # 2b. then the OMS: PENDING_CANCEL and the venue's answer, in batches of one commit
    # each, a few batches at a time (each order is its own row lock: they are independent)
    work = []
    for group, items in by_group.items():
        answers = answers_by_group[group] or []
        by_venue_id = {a.venue_order_id: a for a in answers if a.venue_order_id}
        by_client_id = {
            (a.client_order_id or "").split("/", 1)[0]: a for a in answers if a.client_order_id
        }
        for pk, _v, _i, _s, venue_order_id, vcid, cid, filled, status in items:
            answer = by_venue_id.get(venue_order_id) if venue_order_id else None
            answer = answer or by_client_id.get((vcid or cid).split("/", 1)[0])
            settled = answer is not None and not answer.is_open and answer.filled_quantity <= filled
            work.append((pk, status, settled))
    batches = [work[i : i + BATCH] for i in range(0, len(work), BATCH)]
    if transaction.get_connection().in_atomic_block or len(batches) < 2:
        outcomes = [_book(batch, reason) for batch in batches]  # inside a caller's transaction
    else:
        with ThreadPoolExecutor(max_workers=BOOKKEEPING_THREADS) as pool:
            outcomes = list(pool.map(lambda b: _in_thread(_book, b, reason), batches))
    for marked, applied, to_ask in outcomes:
        result.marked_pending_cancel += marked
        result.applied_canceled += applied
        for pk in to_ask:  # after the commit: the task must see PENDING_CANCEL
            _send_cancel_task(pk)
            result.per_order_cancels += 1

    result.seconds = round(time.monotonic() - started, 3)
    if not follow_up:
        from omsweb.celery import app
        from risk.services import KILL_SWEEP_TASK

        app.send_task(
            KILL_SWEEP_TASK,
            (change_id,),
            {"follow_up": True, "groups": result.groups},
            countdown=FOLLOW_UP_S,
        )
    _record(change_id, result, follow_up)
    log.warning("kill switch sweep (%s%s): %s", state.label, " follow-up" if follow_up else "",
                result.as_dict())  # fmt: skip
    return result.as_dict()


def _covers_every_order_at(state: Any, venue_id: int, instrument_id: int) -> bool:
    """A venue cancel-all cancels every order of ours on that symbol: only use it when
    the scope covers them all (an account-scope halt with another account trading the
    same symbol at the same venue must cancel one by one)."""
    from orders.models import Order

    if not state.account_id:
        return True
    return not (
        Order.objects.filter(
            venue_id=venue_id, instrument_id=instrument_id, status__in=lc.values(lc.OPEN_STATUSES)
        )
        .exclude(account_id=state.account_id)
        .exists()
    )


def _venue_cancel_all(
    venue: Any, symbol: str, state: Any, instrument_id: int, result: SweepResult
) -> list[Any] | None:
    """The venue's cancel-all answer, or None when it was not (or could not be) used."""
    from venues.base import VenueError
    from venues.guard import guarded_adapter  # the venue's rate limiter (cancel lane), breaker

    try:
        adapter = guarded_adapter(venue)
        if not adapter.capabilities().cancel_all:
            return None
        if not _covers_every_order_at(state, venue.pk, instrument_id):
            return None
        result.cancel_all_calls += 1
        started = time.monotonic()
        answers = adapter.cancel_all(symbol)
        result.venue_calls.append(
            {"venue": venue.name, "symbol": symbol, "answered": len(answers),
             "seconds": round(time.monotonic() - started, 3)}
        )  # fmt: skip
    except VenueError as exc:
        result.errors.append(f"{venue.name} {symbol}: {exc.reason}")
        log.warning("kill switch: cancel-all on %s %s failed: %s", venue.name, symbol, exc.reason)
        return None
    except Exception as exc:  # a venue we cannot build an adapter for: cancel one by one
        result.errors.append(f"{venue.name} {symbol}: {exc!r}")
        log.exception("kill switch: cancel-all on %s %s failed", venue.name, symbol)
        return None
    result.canceled_at_venue += sum(1 for a in answers if not a.is_open)
    return answers


def _book(batch: list[tuple[int, str, bool]], reason: str) -> tuple[int, int, list[int]]:
    """One transaction: mark each order PENDING_CANCEL (no cancel task of its own), then
    apply the venue's CANCELED where it answered; return (marked, applied, to ask)."""
    from orders import engine
    from orders.reports import ExecutionReport, ReportKind

    marked = applied = 0
    to_ask: list[int] = []
    with transaction.atomic():
        for pk, status, settled in batch:
            try:
                order = engine.execute(
                    CancelOrder(order_id=pk, source="risk", reason=reason, send=False)
                )
            except OrderStateConflict:
                continue  # terminal already, or an amend in flight: the follow-up retries
            if order.status != "PENDING_CANCEL":
                continue
            marked += status != "PENDING_CANCEL"
            if not settled:
                # not answered for (not at the venue yet, no cancel-all, more filled than
                # we know): the per-order cancel asks the venue and settles it
                to_ask.append(pk)
                continue
            report = ExecutionReport(kind=ReportKind.CANCELED, source="venue", reason=reason)
            applied += engine.process(pk, [report])[0].applied
    return marked, applied, to_ask


def _in_thread(fn: Any, *args: Any) -> Any:
    """Run ``fn`` in a pool thread with its own database connection, closed after."""
    from django.db import connections

    try:
        return fn(*args)
    finally:
        connections.close_all()


def _record(change_id: int, result: SweepResult, follow_up: bool) -> None:
    from risk.models import TradingStateChange

    with transaction.atomic():
        change = TradingStateChange.objects.select_for_update().get(pk=change_id)
        key = "follow_up_sweep" if follow_up else "sweep"
        change.detail = {**change.detail, key: result.as_dict()}
        change.save(update_fields=["detail"])
