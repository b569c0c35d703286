"""The execution engine: commands in, reports in, events out.

Two entries, and nothing else changes an order:

* ``execute(command)``: everything that asks for a change (REST, blotter, kill switch,
  reconciliation, the router's child orders, FIX) as a command of
  ``orders/domain/commands.py``. A new order or an amend passes the pre-trade risk
  stage (``risk/engine.py``); the change is written by the one writer
  (``orders/writer.py``) under the order's row lock; venue work (send, cancel, amend)
  is queued for the workers when the transaction commits (``orders/tasks.py`` runs it
  through ``orders/venue_calls.py``).
* ``process(order_id, reports)``: everything a venue says about an order (its answers,
  its stream, reconciliation's findings) as execution reports (``orders/reports.py``),
  applied in one transaction under the order's lock.

Each change emits an event (``orders/events.py``) to the listeners configured in one
place (``settings.OMS_EVENT_LISTENERS``): the live push, post-trade risk. Order states
and their rules come only from ``orders/domain/lifecycle.py``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from omsweb import events as bus
from omsweb import sqlrows as sr
from orders import writer
from orders.access import may_trade_sql
from orders.domain import lifecycle as lc
from orders.domain.commands import CancelAll, CancelOrder, Command, ModifyOrder, SubmitOrder
from orders.domain.errors import (
    OrderConflict,
    OrderRiskDenied,
    OrderStateConflict,
    OrderValidationError,
)
from orders.events import FillBooked, OrderChanged
from orders.models import Account, Instrument, Order, OrderEvent, VenueOrderRef
from orders.reports import ExecutionReport, ReportKind, domain_event
from risk import engine as pretrade
from routing import inputs as route_inputs
from routing.venue_choice import listing_problem
from venues.models import Venue

log = logging.getLogger(__name__)

ENQUEUED_AT_HEADER = "oms_enqueued_at"
# A parent order's work: plan a round of children (routing/tasks.py), and cancel its
# children when it is canceled or amended (orders/tasks.py, on the urgent queue).
ROUTE_TASK = "oms.route.parent"
CANCEL_CHILDREN_TASK = "oms.urgent.cancel_children"


def _send_task(name: str, args: tuple[Any, ...], venue: str | None = None) -> None:
    from omsweb.celery import app, venue_queue

    # the time it was queued rides along: the worker records it, so queueing delay is
    # visible per order
    options = {"queue": venue_queue(venue)} if venue else {}
    app.send_task(name, args=args, headers={ENQUEUED_AT_HEADER: time.time()}, **options)


# Where venue work goes (a Celery task by name), and the clock: in-process tests
# replace both (tests/orders/engine_harness.py).
dispatch: Callable[[str, tuple[Any, ...], str | None], None] = _send_task
clock: Callable[[], datetime] = timezone.now


def queue(task: str, *args: Any, venue: str | None = None) -> None:
    """Queue venue work when the transaction commits (never inside it; at once outside
    a transaction). ``venue``: the order's venue name when at hand, for its queue
    (otherwise the Celery router looks it up). A broker that is down is logged: the
    sweeps send it again."""

    def send() -> None:
        try:
            dispatch(task, args, venue)
        except Exception:  # broker down: the outbox sweep re-sends it, nothing is lost
            log.exception("enqueue %s%s failed; the sweep will retry", task, args)

    transaction.on_commit(send)


def _changed(order: Order, kind: str, fill: Any = None) -> None:
    bus.emit(OrderChanged(order=order, kind=kind, fill=fill))


@dataclass(frozen=True)
class SubmitResult:
    order: Order
    created: bool


@dataclass(frozen=True)
class ApplyResult:
    order: Order | None
    applied: bool
    duplicate: bool = False
    late: bool = False
    detail: str = ""


def execute(command: Command) -> Any:
    """Run one command. ``SubmitOrder`` -> ``SubmitResult``; ``CancelOrder`` and
    ``ModifyOrder`` -> the order; ``CancelAll`` -> the ids asked to cancel. Errors a
    client caused raise ``OmsError`` subclasses (``orders/domain/errors.py``)."""
    if isinstance(command, SubmitOrder):
        return _submit(command)
    if isinstance(command, CancelOrder):
        return _cancel(command)[0]
    if isinstance(command, ModifyOrder):
        return _modify(command)
    if isinstance(command, CancelAll):
        return _cancel_all(command)
    raise TypeError(f"not a command: {command!r}")


# --- SubmitOrder ------------------------------------------------------------------------


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def new_client_order_id() -> str:
    """A client order id unique across all accounts: the id every new order is known by
    at the venue (a client's own id is unique only within its account)."""
    return "oms-" + uuid.uuid4().hex[:24]


@functools.cache
def _refs_sql() -> str:
    """The account (if the user may trade it), the instrument and the venue by their
    codes, in one round trip."""
    account, instrument, venue = sr.part(Account), sr.part(Instrument), sr.part(Venue)
    return (
        f"SELECT {account.select('a')}, {instrument.select('i')}, {venue.select('v')} "
        f"FROM (SELECT 1) AS one "
        f"LEFT JOIN {sr.table(Account)} a ON a.{sr.column(Account, 'code')} = %(account)s "
        f"AND {may_trade_sql('a')} "
        f"LEFT JOIN {sr.table(Instrument)} i ON i.{sr.column(Instrument, 'symbol')} = %(symbol)s "
        f"LEFT JOIN {sr.table(Venue)} v ON v.{sr.column(Venue, 'name')} = %(venue)s"
    )


def _resolve(command: SubmitOrder) -> tuple[Account, Instrument, Venue | None]:
    params = {
        "user": command.user_id,
        "account": command.account,
        "symbol": command.symbol,
        "venue": command.venue,
    }
    with connection.cursor() as cursor:
        cursor.execute(_refs_sql(), params)
        row = cursor.fetchone()
    account, instrument, venue = sr.hydrate(
        (sr.part(Account), sr.part(Instrument), sr.part(Venue)), row
    )
    unknown = {
        name: [f"unknown {name} {value!r}"]
        for name, value, found in (
            ("account", command.account, account),
            ("symbol", command.symbol, instrument),
            ("venue", command.venue, venue if command.venue else True),
        )
        if found is None
    }
    if unknown:
        name, messages = next(iter(unknown.items()))
        raise OrderValidationError(f"{name}: {messages[0]}", field=name, fields=unknown)
    return account, instrument, venue


def _check_increments(instrument: Instrument, *, quantity: Decimal, price: Decimal | None) -> None:
    if quantity % instrument.lot_size:
        raise OrderValidationError(
            f"quantity {_dec(quantity)} is not a multiple of the lot size "
            f"{_dec(instrument.lot_size)} for {instrument.symbol}",
            field="quantity",
        )
    if price is not None and price % instrument.tick_size:
        raise OrderValidationError(
            f"price {_dec(price)} is not a multiple of the tick size "
            f"{_dec(instrument.tick_size)} for {instrument.symbol}",
            field="price",
        )


def _fingerprint(command: SubmitOrder, time_in_force: str) -> str:
    fields = {
        "account": command.account,
        "symbol": command.symbol,
        "side": command.side,
        "type": command.type,
        "quantity": _dec(command.quantity),
        "price": _dec(command.price),
        "time_in_force": time_in_force,
        "venue": command.venue,
    }
    raw = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def _venue_unavailable(venue: Venue) -> str | None:
    """A reason when the venue's circuit breaker is open (new orders fail fast)."""
    from omsweb.redis_client import client
    from venues.breaker import is_open

    if is_open(client(), venue.name):
        return f"VENUE_UNAVAILABLE: {venue.name} circuit breaker open"
    return None


def _last_kind(denial: list[dict[str, Any]], unavailable: str | None) -> str:
    if denial:
        return lc.OrderDenied.kind
    if unavailable:
        return lc.OrderRejected.kind
    return "OrderCreated"


def _submit(command: SubmitOrder) -> SubmitResult:
    """Persist a new order as PENDING_NEW, pass it through pre-trade risk, and queue
    its send on commit. Idempotent on ``client_order_id``: the same id with the same
    fields returns the existing order (``created=False``); with other fields raises
    ``OrderConflict``."""
    if command.type == "market" and command.price is not None:
        raise OrderValidationError("a market order takes no price", field="price")
    if command.type == "limit" and command.price is None:
        raise OrderValidationError("a limit order needs a price", field="price")
    # a market order never rests
    time_in_force = command.time_in_force or ("IOC" if command.type == "market" else "GTC")
    if command.type == "market" and time_in_force == "GTC":
        time_in_force = "IOC"
    account, instrument, venue = _resolve(command)
    fingerprint = _fingerprint(command, time_in_force)
    # No read-before-write: the unique index on (account, client_order_id) decides a
    # replay. The venue gets an id of its own, unique across accounts.
    venue_client_order_id = new_client_order_id()
    client_order_id = command.client_order_id or venue_client_order_id
    if not instrument.enabled:
        raise OrderValidationError(f"instrument {instrument.symbol} is disabled", field="symbol")
    if venue is not None and not venue.enabled:
        raise OrderValidationError(f"venue {venue.name} is disabled", field="venue")
    if venue is not None and (unlisted := listing_problem(venue, instrument=instrument)):
        raise OrderValidationError(unlisted, field="venue")
    _check_increments(instrument, quantity=command.quantity, price=command.price)
    order = Order(
        client_order_id=client_order_id,
        venue_client_order_id=venue_client_order_id,
        account=account,
        instrument=instrument,
        side=command.side,
        type=command.type,
        quantity=command.quantity,
        price=command.price,
        time_in_force=time_in_force,
        venue=venue,  # None: a parent, routed by the smart order router (routing/parents.py)
        status=lc.OrderStatus.PENDING_NEW.value,
        parent_id=command.parent_id,
        created_by_id=command.user_id,
        request_fingerprint=fingerprint,
        event_sequence=1,
    )
    created = OrderEvent(
        order=order,
        sequence=1,
        kind="OrderCreated",
        source=command.source,
        status=order.status,
        payload={
            "quantity": _dec(command.quantity),
            "price": _dec(command.price),
            "venue": venue.name if venue is not None else None,
            "routed": venue is None,
        },
    )
    # Read before the transaction: the account's risk lock is held as briefly as possible.
    # A parent no venue may trade now is denied NO_ROUTE (naming each venue's state).
    unavailable = _venue_unavailable(venue) if venue is not None else None
    no_route = route_inputs.unroutable(order) if venue is None else None
    try:
        with writer.inserted(order, created) as w:
            denial = pretrade.check_new_order(order)  # the risk stage
            if no_route:
                denial = [*denial, {"check": "NO_ROUTE", "message": no_route,
                                    "limit": None, "value": None}]  # fmt: skip
            if denial:
                codes = tuple(r.get("message") or r.get("check", "") for r in denial)
                w.apply(
                    lc.OrderDenied(reasons=codes),
                    source="risk",
                    payload={"reasons": denial},
                    reason="; ".join(codes),
                )
            elif unavailable:  # fail fast: never sent
                w.apply(
                    lc.OrderRejected(reason=unavailable),
                    source="worker",
                    payload={"reason": unavailable},
                    reason=unavailable,
                )
            elif venue is None:
                queue(ROUTE_TASK, order.pk)  # the router plans its children off this path
            else:
                queue("oms.orders.submit", order.pk, venue=venue.name)
            _changed(order, _last_kind(denial, unavailable))
    except IntegrityError:
        # Lost a race with a concurrent request carrying the same client order id.
        existing = Order.objects.filter(account=account, client_order_id=client_order_id).first()
        if existing is None:
            raise
        if existing.request_fingerprint != fingerprint:
            raise OrderConflict(
                f"client_order_id {client_order_id!r} was already used for a different order",
                field="client_order_id",
            ) from None
        return SubmitResult(order=existing, created=False)
    if denial:
        raise OrderRiskDenied("order denied by pre-trade risk", order=order, reasons=denial)
    return SubmitResult(order=order, created=True)


# --- CancelOrder, CancelAll -------------------------------------------------------------


def _cancel(command: CancelOrder) -> tuple[Order, bool]:
    """Not sent yet: canceled at once. Working: PENDING_CANCEL and a cancel task on the
    urgent queue. Already canceled or cancel pending: unchanged (False)."""
    with writer.locked(command.order_id) as w:
        order = w.order
        status = lc.OrderStatus(order.status)
        if status in (lc.OrderStatus.CANCELED, lc.OrderStatus.PENDING_CANCEL):
            return order, False
        payload = {"reason": command.reason}
        if status == lc.OrderStatus.PENDING_NEW:
            # Not sent yet: the submit task will find it canceled and do nothing.
            event: lc.OrderEvent = lc.OrderCanceled(
                reason=command.reason or "canceled before it was sent"
            )
        elif lc.can_apply(status, lc.OrderCancelRequested.kind):
            event = lc.OrderCancelRequested()
            if order.venue_id is None:  # a parent: its children are canceled, then it is
                queue(CANCEL_CHILDREN_TASK, order.pk)
            elif command.send:  # else the caller cancels at the venue (kill switch)
                queue("oms.urgent.cancel", order.pk)
        elif status == lc.OrderStatus.PENDING_REPLACE:
            raise OrderStateConflict(
                f"order {order.pk} has an amend in flight; cancel again when it settles",
                field="status",
            )
        else:
            raise OrderStateConflict(
                f"order {order.pk} is {status.value} and cannot be canceled", field="status"
            )
        w.apply(event, source=command.source, payload=payload)
        _changed(order, event.kind)
        if order.parent_id is not None and order.status in _TERMINAL:
            w.flush()
            _follow_child(order, [])  # a child canceled before it was sent
        return order, True


def _cancel_all(command: CancelAll) -> list[int]:
    done = []
    for order_id in command.order_ids:
        try:
            _, changed = _cancel(
                CancelOrder(order_id=order_id, reason=command.reason, source=command.source)
            )
        except OrderStateConflict:
            continue  # it went terminal, or an amend is in flight
        if changed:
            done.append(order_id)
    return done


# --- ModifyOrder ------------------------------------------------------------------------


def _modify(command: ModifyOrder) -> Order:
    """PENDING_REPLACE, then the amend task; the amend passes pre-trade risk first."""
    if command.quantity is None and command.price is None:
        raise OrderValidationError("give a new quantity or a new price", field="quantity")
    denial: list[dict[str, Any]] = []
    with writer.locked(command.order_id) as w:
        order = w.order
        if not lc.can_apply(order.status, lc.OrderReplaceRequested.kind):
            raise OrderStateConflict(
                f"order {order.pk} is {order.status}; only a working order at the venue "
                "can be amended",
                field="status",
            )
        if order.type == "market" and command.price is not None:
            raise OrderValidationError("a market order takes no price", field="price")
        quantity = order.quantity if command.quantity is None else command.quantity
        price = order.price if command.price is None else command.price
        _check_increments(order.instrument, quantity=quantity, price=price)
        if quantity <= order.filled_quantity:
            raise OrderValidationError(
                f"quantity {_dec(quantity)} must exceed the filled quantity "
                f"{_dec(order.filled_quantity)}",
                field="quantity",
            )
        if quantity == order.quantity and price == order.price:
            raise OrderValidationError("nothing to change", field="quantity")
        payload: dict[str, Any] = {"quantity": _dec(quantity), "price": _dec(price)}
        denial = pretrade.check_amend(order, quantity=quantity, price=price)  # the risk stage
        if denial:
            # the order keeps working unchanged; the refused amend stays on its record
            w.note("AmendDenied", source="risk", payload={**payload, "reasons": denial})
        else:
            w.apply(
                lc.OrderReplaceRequested(quantity=quantity, price=price),
                source=command.source,
                payload=payload,
            )
            if order.venue_id is None:  # a parent: cancel its children, then re-plan
                queue(CANCEL_CHILDREN_TASK, order.pk)
            else:
                queue("oms.orders.amend", order.pk)
            _changed(order, lc.OrderReplaceRequested.kind)
    if denial:
        raise OrderRiskDenied("amend denied by pre-trade risk", order=order, reasons=denial)
    return order


# --- process: what venues say ----------------------------------------------------------


def process(order_id: int, reports: list[ExecutionReport]) -> list[ApplyResult]:
    """Apply what a venue says about one order (ack, fills, cancel...) in one
    transaction under its lock: status, fills, position and P&L.

    Idempotent: a fill whose ``(venue, trade_id)`` is stored is skipped; a repeated ack
    or cancel is a no-op. A report the lifecycle refuses is recorded as
    ``ReportIgnored`` and not applied (reconciliation restores the venue's truth)."""
    if not reports:
        return []
    with writer.locked(order_id) as w:
        results = [_apply(w, report) for report in reports]
        if w.order.parent_id is not None and any(r.applied for r in results):
            w.flush()  # the parent's step reads its children as they are now
            fills = [
                report
                for report, result in zip(reports, results, strict=True)
                if result.applied and report.kind == ReportKind.FILL
            ]
            _follow_child(w.order, fills)
        return results


def _domain_event(order: Order, report: ExecutionReport) -> lc.OrderEvent:
    return domain_event(
        report,
        quantity=order.quantity,
        pending_quantity=order.pending_quantity,
        pending_price=order.pending_price,
    )


def _apply(w: writer.OrderWrite, report: ExecutionReport) -> ApplyResult:
    order = w.order
    if report.kind == ReportKind.FILL and w.fill_known(str(report.trade_id)):
        return ApplyResult(order=order, applied=False, duplicate=True)
    event = _domain_event(order, report)
    fields: dict[str, Any] = {}
    if report.kind in (ReportKind.REJECT, ReportKind.CANCELED, ReportKind.EXPIRED):
        if report.reason:
            fields["reason"] = report.reason
    if report.kind == ReportKind.REPLACED:
        fields["amend_count"] = order.amend_count + 1
        if report.client_order_id:
            fields["venue_client_order_id"] = report.client_order_id
    try:
        transition = lc.apply(writer.state_of(order), event)
    except lc.LifecycleError as exc:
        if report.kind == ReportKind.ACK:
            return ApplyResult(order=order, applied=False, duplicate=True)  # late ack
        payload = {**report.to_payload(), "error": str(exc)}
        w.note("ReportIgnored", source=report.source, payload=payload)
        log.warning("order %s: report %s ignored: %s", order.pk, report.kind, exc)
        return ApplyResult(order=order, applied=False, detail=str(exc))
    if transition.noop and report.kind != ReportKind.FILL:
        if report.venue_order_id and not order.venue_order_id:
            w.set(venue_order_id=report.venue_order_id)
            w.link(report.venue_order_id, venue_client_order_id=_venue_client_id(order, report))
        return ApplyResult(order=order, applied=False, duplicate=True)
    w.record(event, transition, source=report.source, payload=report.to_payload(), **fields)
    if report.venue_order_id and report.kind in (ReportKind.ACK, ReportKind.REPLACED):
        w.link(report.venue_order_id, venue_client_order_id=_venue_client_id(order, report))
    if report.kind == ReportKind.FILL:
        assert report.quantity is not None and report.price is not None
        booked = w.fill(
            trade_id=str(report.trade_id),
            quantity=report.quantity,
            price=report.price,
            fee=report.fee or Decimal(0),
            fee_currency=report.fee_currency or "",
            is_maker=report.is_maker,
            late=transition.late,
            executed_at=report.executed_at,
        )
        bus.emit(FillBooked(order=order, fill=booked.fill, position=booked.position))
    _changed(
        order, event.kind
    )  # each change is pushed as it was (clients keep the highest version)
    return ApplyResult(order=order, applied=True, late=transition.late)


def _venue_client_id(order: Order, report: ExecutionReport) -> str:
    return report.client_order_id or order.venue_client_order_id or order.client_order_id


# --- parents and their children ---------------------------------------------------------
#
# A parent (an order without a venue) is never sent anywhere: the router plans rounds of
# children for it (routing/parents.py, through ``parent_round``), and its status, filled
# quantity and average price follow its children's fills (``_follow_child``, in the
# child's transaction). Locks are always taken child first, then parent (a child's
# report, a child's cancel), or the parent alone (a round, a cancel or amend request):
# never a child while the parent's lock is held, except children just inserted.

_TERMINAL = frozenset(s.value for s in lc.TERMINAL_STATUSES)
_OPEN = lc.values(lc.OPEN_STATUSES)
_ROUTABLE = frozenset(
    s.value
    for s in (lc.OrderStatus.PENDING_NEW, lc.OrderStatus.ACCEPTED, lc.OrderStatus.PARTIALLY_FILLED)
)


def _open_children(parent_id: int) -> list[int]:
    return list(
        Order.objects.filter(parent_id=parent_id, status__in=_OPEN)
        .order_by("id")
        .values_list("pk", flat=True)
    )


def _follow_child(child: Order, fills: list[ExecutionReport]) -> None:
    """The parent follows what happened to ``child`` (in the child's transaction, its
    lock held): each new fill of the child is a fill of the parent (a fill after the
    parent was canceled is applied and flagged late, as the lifecycle says); when the
    child was its parent's last open child, the parent settles (``_settle``)."""
    assert child.parent_id is not None
    with writer.locked(child.parent_id) as p:
        parent = p.order
        for report in fills:
            assert report.quantity is not None and report.price is not None
            event = lc.OrderFilled(
                trade_id=f"{child.pk}:{report.trade_id}", quantity=report.quantity,
                price=report.price,
            )  # fmt: skip
            payload = {
                "child_id": child.pk,
                "venue": child.venue.name if child.venue is not None else None,
                "trade_id": str(report.trade_id),
                "quantity": _dec(report.quantity),
                "price": _dec(report.price),
            }
            try:
                p.apply(event, source="router", payload=payload)
            except lc.LifecycleError as exc:  # more than the parent's quantity: a venue bug
                p.note(
                    "ChildFillNotApplied", source="router", payload={**payload, "error": str(exc)}
                )
                log.error("parent %s: fill of child %s not applied: %s", parent.pk, child.pk, exc)
                continue
            # the parent's own trade (FIX clients get a Trade report of their order)
            _changed(parent, event.kind, ParentFill(report.quantity, report.price, event.trade_id))
        if child.status in _TERMINAL:
            _settle(p)


@dataclass(frozen=True)
class ParentFill:
    """A parent's share of a child's fill, as ``OrderChanged.fill`` (no Fill row: the
    child's is the trade; the parent only follows it)."""

    quantity: Decimal
    price: Decimal
    venue_trade_id: str


def _settle(p: writer.OrderWrite) -> None:
    """With no child of the parent open any more: a cancel requested is done; an amend
    requested takes effect and the rest is planned again; a working parent with quantity
    left gets its next round (the router decides: more children, rest, or cancel)."""
    parent = p.order
    if _open_children(parent.pk):
        return
    status = parent.status
    if status == lc.OrderStatus.PENDING_CANCEL.value:
        p.apply(
            lc.OrderCanceled(reason="canceled; no child left working"), source="router",
            payload={"reason": "no child left working"},
        )  # fmt: skip
        _changed(parent, lc.OrderCanceled.kind)
    elif status == lc.OrderStatus.PENDING_REPLACE.value:
        quantity = parent.pending_quantity or parent.quantity
        payload = {"quantity": _dec(quantity), "price": _dec(parent.pending_price)}
        try:
            p.apply(
                lc.OrderReplaced(quantity=quantity, price=parent.pending_price),
                source="router", payload=payload, amend_count=parent.amend_count + 1,
            )  # fmt: skip
            _changed(parent, lc.OrderReplaced.kind)
        except lc.LifecycleError as exc:  # filled beyond the new quantity meanwhile
            reason = f"amend not applied: {exc}"
            p.apply(lc.OrderReplaceRejected(reason=reason), source="router", payload=payload)
            _changed(parent, lc.OrderReplaceRejected.kind)
        if parent.status not in _TERMINAL:
            queue(ROUTE_TASK, parent.pk)
    elif status in _ROUTABLE and status != lc.OrderStatus.PENDING_NEW.value:
        queue(ROUTE_TASK, parent.pk)


def cancel_children(parent_id: int) -> int:
    """Cancel every open child of a parent that is canceled or amended, each in its own
    transaction (child lock only), then settle the parent. Idempotent: children already
    canceling are left alone, a settled parent is not changed again. The number of
    children asked to cancel."""
    asked = 0
    for child_id in _open_children(parent_id):
        try:
            _, changed = _cancel(
                CancelOrder(order_id=child_id, reason="parent canceled or amended", source="router")
            )
        except OrderStateConflict:
            continue  # it finished meanwhile
        asked += int(changed)
    with writer.locked(parent_id) as p:
        if p.order.status not in _TERMINAL:
            _settle(p)
    return asked


@dataclass(frozen=True)
class ChildSpec:
    venue: str
    quantity: Decimal
    price: Decimal
    time_in_force: str  # IOC for a sweep, GTC for the remainder that rests


class ParentRound:
    """What the router may do to a parent whose lock is held, with no child open: deny
    it (nothing may trade it), accept it, send children, or cancel what is left."""

    def __init__(self, w: writer.OrderWrite) -> None:
        self._w = w
        self.order = w.order

    @property
    def leaves(self) -> Decimal:
        return self.order.quantity - self.order.filled_quantity

    def deny(self, reason: str) -> None:
        """A parent not yet routed that no venue may trade: DENIED (``NO_ROUTE: ...``)."""
        reasons = [{"check": "NO_ROUTE", "message": reason, "limit": None, "value": None}]
        self._w.apply(
            lc.OrderDenied(reasons=(reason,)), source="router", payload={"reasons": reasons},
            reason=reason,
        )  # fmt: skip
        _changed(self.order, lc.OrderDenied.kind)

    def accept(self) -> None:
        """PENDING_NEW -> SUBMITTED -> ACCEPTED: the router works it (no-op after)."""
        if self.order.status == lc.OrderStatus.PENDING_NEW.value:
            self._w.apply(lc.OrderSubmitted(), source="router", payload={})
            _changed(self.order, lc.OrderSubmitted.kind)
            self._w.apply(lc.OrderAccepted(), source="router", payload={})
            _changed(self.order, lc.OrderAccepted.kind)

    def note(self, kind: str, payload: dict[str, Any]) -> None:
        self._w.note(kind, source="router", payload=payload)

    def finish(self, reason: str) -> None:
        """Cancel what is left of the parent (an IOC or market remainder, a remainder
        with nowhere to rest)."""
        self._w.apply(
            lc.OrderCanceled(reason=reason), source="router", payload={"reason": reason},
            reason=reason,
        )  # fmt: skip
        _changed(self.order, lc.OrderCanceled.kind)

    def send(self, children: list[ChildSpec], *, round_no: int) -> list[Order]:
        """Insert the children (limit orders with ``parent_id``, source "router") and
        queue each one's send when the transaction commits. No pre-trade risk stage: the
        parent passed it, and counts for them (risk/engine.py counts no child)."""
        self._w.flush()
        parent = self.order
        venues = {v.name: v for v in Venue.objects.filter(name__in={c.venue for c in children})}
        made = []
        for n, spec in enumerate(children, start=1):
            made.append(_insert_child(parent, spec, venues[spec.venue], round_no=round_no, n=n))
        return made


def child_client_order_ids(parent: Order, *, round_no: int, n: int) -> tuple[str, str]:
    """(client order id, venue-side id) of child ``n`` of round ``round_no``: both
    derived from the parent's, so the venue's own records show the parent (its
    venue-side id, ``oms-...``, is a prefix of the child's)."""
    suffix = f".r{round_no}.{n}"
    venue_side = f"{parent.venue_base_id}{suffix}"
    client = f"{parent.client_order_id}{suffix}"
    if len(client) > Order._meta.get_field("client_order_id").max_length:  # type: ignore[operator]
        client = venue_side.removeprefix("oms-")[-32:]
    return client, venue_side


def _insert_child(parent: Order, spec: ChildSpec, venue: Venue, *, round_no: int, n: int) -> Order:
    client_id, venue_side_id = child_client_order_ids(parent, round_no=round_no, n=n)
    child = Order(
        client_order_id=client_id,
        venue_client_order_id=venue_side_id,
        account=parent.account,
        instrument=parent.instrument,
        side=parent.side,
        type="limit",  # pinned at the planned price: a vanished quote cancels, never walks
        quantity=spec.quantity,
        price=spec.price,
        time_in_force=spec.time_in_force,
        venue=venue,
        status=lc.OrderStatus.PENDING_NEW.value,
        parent_id=parent.pk,
        created_by_id=None,  # the OMS's own order (FIX reports its parent, not it)
        request_fingerprint=f"child of {parent.pk}",
        event_sequence=1,
    )
    created = OrderEvent(
        order=child,
        sequence=1,
        kind="OrderCreated",
        source="router",
        status=child.status,
        payload={
            "quantity": _dec(spec.quantity),
            "price": _dec(spec.price),
            "venue": venue.name,
            "parent_id": parent.pk,
            "round": round_no,
        },
    )
    with writer.inserted(child, created):
        queue("oms.orders.submit", child.pk, venue=venue.name)
    _changed(child, "OrderCreated")
    return child


@contextmanager
def parent_round(parent_id: int) -> Iterator[ParentRound | None]:
    """The parent's lock, for one round of routing; None (nothing to do) unless it is a
    parent that may be routed now: not yet routed, or working with quantity left and no
    child open (a cancel or amend in flight, or children still working: their end
    settles the parent and asks for the next round)."""
    with writer.locked(parent_id) as w:
        order = w.order
        if (
            order.venue_id is not None
            or order.status not in _ROUTABLE
            or order.filled_quantity >= order.quantity
            or _open_children(parent_id)
        ):
            yield None
            return
        yield ParentRound(w)


# --- the engine's own steps around a venue call (orders/venue_calls.py) -----------------


@contextmanager
def marked_sent(order_id: int, *, enqueued_at: float | None = None) -> Iterator[Order | None]:
    """PENDING_NEW -> SUBMITTED, durable before the block calls the venue. Yields None if
    the order is past PENDING_NEW (another delivery of the task sent it, it was
    canceled). The SUBMITTED state is announced when the block ends, after the venue's
    answer was applied: off the path to the ack (clients keep the highest version)."""
    payload: dict[str, Any] = {} if enqueued_at is None else {"enqueued_at": enqueued_at}
    order = writer.mark_submitted(order_id, payload=payload)
    try:
        yield order
    finally:
        if order is not None:
            _changed(order, lc.OrderSubmitted.kind)


def mark_resend(order_id: int, *, min_age_s: float) -> Order | None:
    """Claim the right to send a SUBMITTED order again (the venue says it never received
    it): only if it is still SUBMITTED and was last sent at least ``min_age_s`` ago, so
    two resolvers never both re-send and a delayed first send can no longer execute.
    Records ``OrderResent``."""
    with writer.locked(order_id) as w:
        order = w.order
        if order.status != lc.OrderStatus.SUBMITTED.value:
            return None
        if order.updated_at > clock() - timedelta(seconds=min_age_s):
            return None
        w.note(
            "OrderResent", source="recon", payload={"client_order_id": order.venue_client_order_id}
        )
        return order


def adopt(
    *,
    account: Account,
    instrument: Instrument,
    venue: Venue,
    side: str,
    type: str,
    quantity: Decimal,
    price: Decimal | None,
    venue_order_id: str,
    venue_client_order_id: str,
    by: Any,
    unknown_id: int,
) -> Order:
    """Take an order the venue has and the OMS does not into the OMS (an operator's
    decision, from reconciliation): SUBMITTED, then the venue's ack."""
    client_id = (venue_client_order_id or f"adopt-{venue_order_id}")[:32]
    order = Order(
        client_order_id=client_id,
        venue_client_order_id=venue_client_order_id or client_id,
        account=account,
        instrument=instrument,
        side=side,
        type=type,
        quantity=quantity,
        price=price,
        venue=venue,
        status=lc.OrderStatus.SUBMITTED.value,
        created_by_id=getattr(by, "pk", None),
        request_fingerprint="adopted",
        event_sequence=1,
    )
    created = OrderEvent(
        order=order,
        sequence=1,
        kind="OrderAdopted",
        source="recon",
        status=order.status,
        payload={"unknown_venue_order": unknown_id, "by": str(by)},
    )
    with writer.inserted(order, created):
        pass
    ack = ExecutionReport(
        kind=ReportKind.ACK,
        source="recon",
        venue_order_id=venue_order_id,
        client_order_id=venue_client_order_id or None,
    )
    process(order.pk, [ack])
    return order


def find_order(
    *,
    venue_id: int,
    symbol: str,
    venue_order_id: str | None = None,
    client_order_id: str | None = None,
) -> Order | None:
    """The OMS order a venue report is about, by venue order id (unique per venue and
    symbol) or the venue-side client order id (the order's own, or an earlier one:
    ``<id>/<n>`` after amends)."""
    if venue_order_id:
        ref = (
            VenueOrderRef.objects.filter(
                venue_id=venue_id, instrument__symbol=symbol, venue_order_id=venue_order_id
            )
            .values_list("order_id", flat=True)
            .first()
        )
        if ref:
            return Order.objects.filter(pk=ref).first()
    if client_order_id:
        base = client_order_id.split("/", 1)[0]
        return (
            Order.objects.filter(venue_id=venue_id)
            .filter(Q(venue_client_order_id=base) | Q(venue_client_order_id__startswith=f"{base}/"))
            .first()
        )
    return None
