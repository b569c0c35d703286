"""Order services: the only code that changes orders, fills and positions.

Each service takes the order's row lock (``select_for_update``), turns the request or
the venue's report into a domain event, applies it with the pure state machine in
``orders/domain/lifecycle.py``, writes the changed fields with ``update_fields``, appends
the ``OrderEvent`` and schedules side effects (tasks, live pushes) on commit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from blotter import payloads
from omsweb import realtime
from omsweb import sqlrows as sr
from orders import rows
from orders.domain import lifecycle as lc
from orders.domain.positions import PositionState, apply_fill
from orders.models import (
    Account,
    Fill,
    Instrument,
    Order,
    OrderEvent,
    Position,
    VenueOrderRef,
)
from orders.reports import ExecutionReport, ReportKind
from venues.models import Venue

log = logging.getLogger(__name__)

ZERO = Decimal(0)
DB_PLACES = Decimal("1e-12")


# --- Errors ---------------------------------------------------------------------------


class OrderError(Exception):
    """A user-caused problem with an order request. ``code`` is stable for clients."""

    status_code = 400
    code = "INVALID"

    def __init__(self, message: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra


class OrderValidationError(OrderError):
    code = "VALIDATION_ERROR"


class OrderConflict(OrderError):
    status_code = 409
    code = "CLIENT_ORDER_ID_CONFLICT"


class OrderStateConflict(OrderError):
    status_code = 409
    code = "ORDER_STATE_CONFLICT"


class OrderRiskDenied(OrderError):
    status_code = 422
    code = "RISK_DENIED"

    def __init__(self, message: str, *, order: Order, reasons: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.order = order
        self.reasons = reasons


# --- Helpers --------------------------------------------------------------------------


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _fingerprint(fields: dict[str, Any]) -> str:
    raw = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(raw.encode()).hexdigest()


def new_client_order_id() -> str:
    return "oms-" + uuid.uuid4().hex[:24]


def state_of(order: Order) -> lc.OrderState:
    return lc.OrderState(
        status=lc.OrderStatus(order.status),
        quantity=order.quantity,
        price=order.price,
        filled_quantity=order.filled_quantity,
        average_price=order.average_price,
        prior_status=lc.OrderStatus(order.prior_status) if order.prior_status else None,
        venue_order_id=order.venue_order_id or None,
        pending_quantity=order.pending_quantity,
        pending_price=order.pending_price,
        filled_notional=order.filled_notional,
    )


_STATE_FIELDS = (
    "status",
    "quantity",
    "price",
    "filled_quantity",
    "filled_notional",
    "average_price",
    "prior_status",
    "venue_order_id",
    "pending_quantity",
    "pending_price",
)


def _write_state(order: Order, state: lc.OrderState) -> list[str]:
    """Copy a domain state onto the row; return the fields that changed."""
    new = {
        "status": state.status.value,
        "quantity": state.quantity,
        "price": state.price,
        "filled_quantity": state.filled_quantity,
        "filled_notional": state.filled_notional,
        "average_price": (
            None if state.average_price is None else state.average_price.quantize(DB_PLACES)
        ),
        "prior_status": state.prior_status.value if state.prior_status else "",
        "venue_order_id": state.venue_order_id or "",
        "pending_quantity": state.pending_quantity,
        "pending_price": state.pending_price,
    }
    changed = []
    for name in _STATE_FIELDS:
        if getattr(order, name) != new[name]:
            setattr(order, name, new[name])
            changed.append(name)
    return changed


def _append_event(
    order: Order,
    *,
    kind: str,
    source: str,
    payload: dict[str, Any] | None = None,
    late: bool = False,
) -> OrderEvent:
    order.event_sequence += 1
    return OrderEvent.objects.create(
        order=order,
        sequence=order.event_sequence,
        kind=kind,
        source=source,
        status=order.status,
        payload=payload or {},
        late=late,
    )


def _transition(
    order: Order,
    event: lc.OrderEvent,
    *,
    source: str,
    payload: dict[str, Any] | None = None,
    extra_fields: Iterable[str] = (),
) -> lc.Transition:
    """Apply ``event`` to a locked order, save what changed, append the event."""
    transition = lc.apply(state_of(order), event)
    changed = _write_state(order, transition.state)
    _append_event(order, kind=event.kind, source=source, payload=payload, late=transition.late)
    order.save(update_fields=[*changed, *extra_fields, "event_sequence", "updated_at"])
    publish_order(order)
    return transition


def publish_order(order: Order) -> None:
    """Push the order's state to the blotters (when the current transaction commits)."""
    realtime.publish_on_commit(
        "order.updated", account_id=order.account_id, **payloads.order_payload(order)
    )


def _locked(order_id: int) -> Order:
    """The order with its instrument, account and venue, locked (one statement)."""
    return rows.lock_order(order_id)


ENQUEUED_AT_HEADER = "oms_enqueued_at"


def _on_commit_task(task_path: str, *args: Any, **kwargs: Any) -> None:
    """Enqueue a task after the transaction commits (never inside it)."""

    def send() -> None:
        from omsweb.celery import app

        try:
            # the time it was queued rides along (``oms_enqueued_at`` header): the worker
            # records it, so queueing delay is visible per order
            app.send_task(
                task_path, args=args, kwargs=kwargs, headers={ENQUEUED_AT_HEADER: time.time()}
            )
        except Exception:  # broker down: the outbox sweep re-sends it, nothing is lost
            log.exception("enqueue %s%s failed; the sweep will retry", task_path, args)

    transaction.on_commit(send)


# --- Submit ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitResult:
    order: Order
    created: bool


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


def _choose_venue(instrument: Instrument) -> Venue:
    from routing.venue_choice import choose_venue

    venue = choose_venue(instrument=instrument)
    if venue is None:
        raise OrderValidationError(f"no enabled venue trades {instrument.symbol}", field="venue")
    return venue


def order_submit(
    *,
    user: Any,
    account: Account,
    instrument: Instrument,
    side: str,
    type: str,
    quantity: Decimal,
    price: Decimal | None,
    time_in_force: str = "GTC",
    venue: Venue | None = None,
    client_order_id: str | None = None,
    parent: Order | None = None,
    source: str = "api",
) -> SubmitResult:
    """Persist a new order as PENDING_NEW and send it to its venue on commit.

    Idempotent on ``client_order_id``: the same id with the same fields returns the
    existing order (``created=False``); with other fields raises ``OrderConflict``.
    """
    if type == "market" and price is not None:
        raise OrderValidationError("a market order takes no price", field="price")
    if type == "limit" and price is None:
        raise OrderValidationError("a limit order needs a price", field="price")
    if type == "market" and time_in_force == "GTC":
        time_in_force = "IOC"  # a market order never rests
    fingerprint = _fingerprint(
        {
            "account": account.code,
            "symbol": instrument.symbol,
            "side": side,
            "type": type,
            "quantity": _dec(quantity),
            "price": _dec(price),
            "time_in_force": time_in_force,
            "venue": venue.name if venue else None,
        }
    )
    # No read-before-write: the unique index on client_order_id decides a replay (the
    # IntegrityError path below), so a new order costs no extra round trip.
    client_order_id = client_order_id or new_client_order_id()

    if not instrument.enabled:
        raise OrderValidationError(f"instrument {instrument.symbol} is disabled", field="symbol")
    if venue is not None and not venue.enabled:
        raise OrderValidationError(f"venue {venue.name} is disabled", field="venue")
    _check_increments(instrument, quantity=quantity, price=price)
    chosen = venue or _choose_venue(instrument)
    # Read before the transaction: the account's risk lock (taken in the pre-trade
    # check) is then held for as short a time as possible.
    unavailable = _venue_unavailable(chosen)

    try:
        with transaction.atomic():
            order = Order(
                client_order_id=client_order_id,
                venue_client_order_id=client_order_id,
                account=account,
                instrument=instrument,
                side=side,
                type=type,
                quantity=quantity,
                price=price,
                time_in_force=time_in_force,
                venue=chosen,
                status=lc.OrderStatus.PENDING_NEW.value,
                parent=parent,
                created_by=user if getattr(user, "pk", None) else None,
                request_fingerprint=fingerprint,
                event_sequence=1,
            )
            created = OrderEvent(
                order=order,
                sequence=1,
                kind="OrderCreated",
                source=source,
                status=order.status,
                payload={
                    "quantity": _dec(quantity),
                    "price": _dec(price),
                    "venue": chosen.name,
                    "routed": venue is None,
                },
            )
            rows.insert_order_with_event(order, created)  # one statement for both rows
            denial = _pre_trade_check(order)
            if denial:
                _deny(order, denial)
            elif unavailable:
                # Fail fast: the venue's breaker is open, so it is never sent.
                order.reason = unavailable
                _transition(
                    order,
                    lc.OrderRejected(reason=unavailable),
                    source="worker",
                    payload={"reason": unavailable},
                    extra_fields=["reason"],
                )
            else:
                from orders.pipeline import prepared_request

                # the request rides along: the worker prepares it while it marks the order
                _on_commit_task("oms.orders.submit", order.pk, prepared=prepared_request(order))
                publish_order(order)
    except IntegrityError:
        # Lost a race with a concurrent request carrying the same client order id.
        existing = Order.objects.filter(client_order_id=client_order_id).first()
        if existing is None:
            raise
        return _replay(existing, fingerprint, user=user)
    if denial:
        raise OrderRiskDenied("order denied by pre-trade risk", order=order, reasons=denial)
    return SubmitResult(order=order, created=True)


def _venue_unavailable(venue: Venue) -> str | None:
    """A reason when the venue's circuit breaker is open (new orders fail fast)."""
    from omsweb.redis_client import client
    from venues.breaker import is_open

    if is_open(client(), venue.name):
        return f"VENUE_UNAVAILABLE: {venue.name} circuit breaker open"
    return None


def _replay(existing: Order, fingerprint: str, *, user: Any) -> SubmitResult:
    if existing.request_fingerprint != fingerprint:
        raise OrderConflict(
            f"client_order_id {existing.client_order_id!r} was already used for a different order",
            field="client_order_id",
        )
    return SubmitResult(order=existing, created=False)


def _pre_trade_check(order: Order) -> list[dict[str, Any]]:
    """Risk hook: a list of failing reasons, empty when the order may go."""
    check: Callable[[Order], list[dict[str, Any]]] | None
    try:
        from risk.engine import check_new_order as check
    except ImportError:  # the risk engine is not installed yet
        check = None
    return check(order) if check else []


def _pre_amend_check(
    order: Order, *, quantity: Decimal, price: Decimal | None
) -> list[dict[str, Any]]:
    """Risk hook for an amend: the order as it would be afterwards."""
    try:
        from risk.engine import check_amend
    except ImportError:
        return []
    return check_amend(order, quantity=quantity, price=price)


def _post_trade_check(*, position: Position, fill: Fill) -> None:
    """Risk hook after a fill moved a position: a breach escalates the trading state."""
    try:
        from risk.engine import after_fill
    except ImportError:
        return
    after_fill(position=position, fill=fill)


def _deny(order: Order, reasons: list[dict[str, Any]]) -> None:
    codes = tuple(r.get("message") or r.get("check", "") for r in reasons)
    order.reason = "; ".join(codes)
    _transition(
        order,
        lc.OrderDenied(reasons=codes),
        source="risk",
        payload={"reasons": reasons},
        extra_fields=["reason"],
    )


# --- Cancel / amend -------------------------------------------------------------------


def order_cancel(
    *, order_id: int, source: str = "api", reason: str = "", send: bool = True
) -> Order:
    """Request a cancel. Not yet sent: canceled at once. Working: PENDING_CANCEL and a
    cancel task on the urgent queue. Already canceled or cancel pending: unchanged."""
    with transaction.atomic():
        order = _locked(order_id)
        status = lc.OrderStatus(order.status)
        if status in (lc.OrderStatus.CANCELED, lc.OrderStatus.PENDING_CANCEL):
            return order
        if status in lc.TERMINAL_STATUSES:
            raise OrderStateConflict(
                f"order {order.pk} is {status.value} and cannot be canceled", field="status"
            )
        if status == lc.OrderStatus.PENDING_REPLACE:
            raise OrderStateConflict(
                f"order {order.pk} has an amend in flight; cancel again when it settles",
                field="status",
            )
        if status == lc.OrderStatus.PENDING_NEW:
            # Not sent yet: the submit task will find it canceled and do nothing.
            _transition(
                order,
                lc.OrderCanceled(reason=reason or "canceled before it was sent"),
                source=source,
                payload={"reason": reason},
            )
            return order
        _transition(order, lc.OrderCancelRequested(), source=source, payload={"reason": reason})
        if send:  # False: the caller cancels at the venue itself (kill-switch cancel-all)
            _on_commit_task("oms.urgent.cancel", order.pk)
        return order


def order_cancel_all(
    *, orders: QuerySet[Order], source: str = "api", reason: str = ""
) -> list[int]:
    """Cancel every working order of ``orders``; return the ids asked to cancel."""
    ids = list(
        orders.filter(status__in=[s.value for s in lc.WORKING_STATUSES] + ["PENDING_NEW"])
        .exclude(status__in=["PENDING_CANCEL", "PENDING_REPLACE"])
        .values_list("pk", flat=True)
    )
    done = []
    for order_id in ids:
        try:
            order_cancel(order_id=order_id, source=source, reason=reason)
            done.append(order_id)
        except OrderStateConflict:
            continue  # it went terminal meanwhile
    return done


def order_amend(
    *,
    order_id: int,
    quantity: Decimal | None,
    price: Decimal | None,
    source: str = "api",
) -> Order:
    """Request a change of quantity and/or price: PENDING_REPLACE, then the amend task."""
    if quantity is None and price is None:
        raise OrderValidationError("give a new quantity or a new price", field="quantity")
    with transaction.atomic():
        order = _locked(order_id)
        status = lc.OrderStatus(order.status)
        if status not in (lc.OrderStatus.ACCEPTED, lc.OrderStatus.PARTIALLY_FILLED):
            raise OrderStateConflict(
                f"order {order.pk} is {status.value}; only a working order at the venue "
                "can be amended",
                field="status",
            )
        if order.type == "market" and price is not None:
            raise OrderValidationError("a market order takes no price", field="price")
        new_qty = order.quantity if quantity is None else quantity
        new_price = order.price if price is None else price
        _check_increments(order.instrument, quantity=new_qty, price=new_price)
        if new_qty <= order.filled_quantity:
            raise OrderValidationError(
                f"quantity {_dec(new_qty)} must exceed the filled quantity "
                f"{_dec(order.filled_quantity)}",
                field="quantity",
            )
        if new_qty == order.quantity and new_price == order.price:
            raise OrderValidationError("nothing to change", field="quantity")
        denial = _pre_amend_check(order, quantity=new_qty, price=new_price)
        if denial:
            # the order keeps working unchanged; the refused amend stays on its record
            _append_event(
                order,
                kind="AmendDenied",
                source="risk",
                payload={"quantity": _dec(new_qty), "price": _dec(new_price), "reasons": denial},
            )
            order.save(update_fields=["event_sequence"])
        else:
            _transition(
                order,
                lc.OrderReplaceRequested(quantity=new_qty, price=new_price),
                source=source,
                payload={"quantity": _dec(new_qty), "price": _dec(new_price)},
            )
            _on_commit_task("oms.orders.amend", order.pk)
    if denial:
        raise OrderRiskDenied("amend denied by pre-trade risk", order=order, reasons=denial)
    return order


# --- Execution reports ----------------------------------------------------------------


@dataclass(frozen=True)
class ApplyResult:
    order: Order | None
    applied: bool
    duplicate: bool = False
    late: bool = False
    detail: str = ""


def find_order(
    *, venue_id: int, venue_order_id: str | None = None, client_order_id: str | None = None
) -> Order | None:
    """The OMS order a venue report is about, by venue order id or client order id."""
    if venue_order_id:
        ref = (
            VenueOrderRef.objects.filter(venue_id=venue_id, venue_order_id=venue_order_id)
            .values_list("order_id", flat=True)
            .first()
        )
        if ref:
            return Order.objects.filter(pk=ref).first()
    if client_order_id:
        base = client_order_id.split("/", 1)[0]
        return Order.objects.filter(client_order_id=base, venue_id=venue_id).first()
    return None


def _fee_in_quote(instrument: Instrument, fee: Decimal, currency: str, price: Decimal) -> Decimal:
    if not fee or not currency or currency == instrument.quote:
        return fee
    if currency == instrument.base:
        return fee * price
    return ZERO  # fees in a third asset (e.g. a venue token) are kept on the fill only


def _apply_fill_to_position(fill: Fill) -> None:
    position, _ = Position.objects.select_for_update().get_or_create(
        account_id=fill.account_id, instrument_id=fill.instrument_id
    )
    state = apply_fill(
        PositionState(
            quantity=position.quantity,
            average_price=position.average_price,
            realized_pnl=position.realized_pnl,
            fees=position.fees,
        ),
        side=fill.side,
        quantity=fill.quantity,
        price=fill.price,
        fee_quote=_fee_in_quote(fill.instrument, fill.fee, fill.fee_currency, fill.price),
    )
    position.quantity = state.quantity
    position.average_price = state.average_price
    position.realized_pnl = state.realized_pnl
    position.fees = state.fees.quantize(DB_PLACES)
    position.save(update_fields=["quantity", "average_price", "realized_pnl", "fees", "updated_at"])
    position.account, position.instrument = fill.account, fill.instrument  # loaded: no query
    realtime.publish_on_commit(
        "position.updated", account_id=fill.account_id, **payloads.position_payload(position)
    )
    _post_trade_check(position=position, fill=fill)


def _domain_event(order: Order, report: ExecutionReport) -> lc.OrderEvent:
    kind = report.kind
    if kind == ReportKind.ACK:
        return lc.OrderAccepted(venue_order_id=report.venue_order_id)
    if kind == ReportKind.REJECT:
        return lc.OrderRejected(reason=report.reason or "rejected by venue")
    if kind == ReportKind.FILL:
        assert report.quantity is not None and report.price is not None and report.trade_id
        return lc.OrderFilled(
            trade_id=report.trade_id, quantity=report.quantity, price=report.price
        )
    if kind == ReportKind.CANCELED:
        return lc.OrderCanceled(reason=report.reason)
    if kind == ReportKind.EXPIRED:
        return lc.OrderExpired(reason=report.reason)
    if kind == ReportKind.CANCEL_REJECTED:
        return lc.OrderCancelRejected(reason=report.reason)
    if kind == ReportKind.REPLACED:
        return lc.OrderReplaced(
            quantity=report.quantity or order.pending_quantity or order.quantity,
            price=report.price if report.price is not None else order.pending_price,
            venue_order_id=report.venue_order_id,
        )
    if kind == ReportKind.REPLACE_REJECTED:
        return lc.OrderReplaceRejected(reason=report.reason)
    if kind == ReportKind.SUBMITTED:
        return lc.OrderSubmitted()
    raise ValueError(f"unknown report kind {kind!r}")


def execution_apply(*, order_id: int, report: ExecutionReport) -> ApplyResult:
    """Apply one venue report to an order: status, fills, position, P&L, in one transaction.

    Idempotent: a fill whose ``(venue, trade_id)`` is already stored is skipped; a repeated
    ack or cancel is a no-op. A report the state machine refuses is recorded as
    ``ReportIgnored`` and not applied (the venue's truth is restored by reconciliation).
    """
    return execution_apply_batch(order_id=order_id, reports=[report])[0]


def execution_apply_batch(*, order_id: int, reports: list[ExecutionReport]) -> list[ApplyResult]:
    """Apply several reports about one order (ack, fills, cancel) under one lock and one
    transaction: what a venue answer usually carries. The order's events, its row and
    its venue ids are written once at the end (three statements for any number of
    reports), and before any fill, so fills and positions see the order as it is."""
    with transaction.atomic():
        order = _locked(order_id)
        writes = _Writes(order)
        results = [_apply_locked(order, report, writes) for report in reports]
        writes.flush()
        return results


def execution_apply_answer(*, order: Order, reports: list[ExecutionReport]) -> list[ApplyResult]:
    """Apply a venue's answer to the order this worker just sent (``order`` as
    ``order_mark_submitted`` returned it), without taking the lock first: the new state
    is computed from that copy and written in one compare-and-set statement, which
    succeeds only if nothing changed the order since (its event sequence is the same).
    Otherwise (a cancel request, the venue stream's report got there first), or for
    answers carrying fills (positions, risk), it goes through ``execution_apply_batch``
    under the lock. Both give the same result; this one costs one round trip."""
    if (
        not reports
        or any(r.kind == ReportKind.FILL for r in reports)
        or transaction.get_connection().in_atomic_block
    ):
        return execution_apply_batch(order_id=order.pk, reports=reports)
    mine = sr.clone(order)  # the caller's instance stays as it was
    writes = _Writes(mine)
    results = [_apply_locked(mine, report, writes) for report in reports]
    if writes.commit_if_unchanged(expected_sequence=order.event_sequence):
        return results
    return execution_apply_batch(order_id=order.pk, reports=reports)


class _Writes:
    """The rows applying reports to one order adds or changes, and the live updates to
    publish once they are committed: sent together, under the lock (``flush``) or as a
    compare-and-set (``commit_if_unchanged``)."""

    def __init__(self, order: Order) -> None:
        self.order = order
        self.events: list[OrderEvent] = []
        self.fields: set[str] = set()
        self.refs: dict[str, VenueOrderRef] = {}
        self.updates: list[Order] = []

    def publish_order(self) -> None:
        """Push the order as it is now, once written (a snapshot: the payload is built
        after the write, off the path to the ack)."""
        self.updates.append(sr.clone(self.order))

    def _publish(self) -> None:
        for snapshot in self.updates:
            realtime.publish_on_commit(
                "order.updated", account_id=snapshot.account_id, **payloads.order_payload(snapshot)
            )
        self.updates = []

    def commit_if_unchanged(self, *, expected_sequence: int) -> bool:
        """Write everything in one statement if the order is still at
        ``expected_sequence``; False (nothing written, nothing published) otherwise, or
        when there is nothing to write (the answer changed nothing in the state read:
        the caller checks again under the lock)."""
        if not self.fields:
            return False
        done = rows.write_if_unchanged(
            self.order,
            expected_sequence=expected_sequence,
            fields=sorted(self.fields),
            events=self.events,
            refs=list(self.refs.values()),
        )
        if done:
            self._publish()
        return done

    def event(self, *, kind: str, source: str, payload: dict[str, Any], late: bool = False) -> None:
        order = self.order
        order.event_sequence += 1
        self.events.append(
            OrderEvent(
                order=order,
                sequence=order.event_sequence,
                kind=kind,
                source=source,
                status=order.status,
                payload=payload,
                late=late,
            )
        )
        self.fields.add("event_sequence")

    def save(self, *fields: str) -> None:
        if "updated_at" in fields:  # as the live payload shows it; the save sets it again
            self.order.updated_at = timezone.now()
        self.fields.update(fields)

    def link(self, report: ExecutionReport) -> None:
        """Remember a venue order id the venue gave this order (``VenueOrderRef``)."""
        order = self.order
        self.refs[report.venue_order_id] = VenueOrderRef(
            order=order,
            venue_id=order.venue_id,
            venue_order_id=report.venue_order_id,
            venue_client_order_id=report.client_order_id or order.venue_client_order_id,
        )

    def flush(self) -> None:
        if self.events:
            OrderEvent.objects.bulk_create(self.events)
        if self.fields:
            self.order.save(update_fields=sorted(self.fields))
        if self.refs:
            # ON CONFLICT DO NOTHING: a repeated ack is harmless
            VenueOrderRef.objects.bulk_create(list(self.refs.values()), ignore_conflicts=True)
        self.events, self.fields, self.refs = [], set(), {}
        self._publish()  # on commit


def _apply_locked(order: Order, report: ExecutionReport, writes: _Writes) -> ApplyResult:
    if (
        report.kind == ReportKind.FILL
        and Fill.objects.filter(venue_id=order.venue_id, venue_trade_id=report.trade_id).exists()
    ):
        return ApplyResult(order=order, applied=False, duplicate=True)
    event = _domain_event(order, report)
    try:
        transition = lc.apply(state_of(order), event)
    except lc.LifecycleError as exc:
        if report.kind == ReportKind.ACK:
            return ApplyResult(order=order, applied=False, duplicate=True)  # late ack
        writes.event(
            kind="ReportIgnored",
            source=report.source,
            payload={**report.to_payload(), "error": str(exc)},
        )
        log.warning("order %s: report %s ignored: %s", order.pk, report.kind, exc)
        return ApplyResult(order=order, applied=False, detail=str(exc))
    if transition.noop and report.kind != ReportKind.FILL:
        if report.venue_order_id and not order.venue_order_id:
            order.venue_order_id = report.venue_order_id
            writes.save("venue_order_id")
            writes.link(report)
        return ApplyResult(order=order, applied=False, duplicate=True)

    extra: list[str] = []
    if report.kind in (ReportKind.REJECT, ReportKind.CANCELED, ReportKind.EXPIRED):
        if report.reason:
            order.reason = report.reason
            extra.append("reason")
    if report.kind == ReportKind.REPLACED:
        order.amend_count += 1
        extra.append("amend_count")
        if report.client_order_id:
            order.venue_client_order_id = report.client_order_id
            extra.append("venue_client_order_id")
    changed = _write_state(order, transition.state)
    writes.event(
        kind=event.kind,
        source=report.source,
        payload=report.to_payload(),
        late=transition.late,
    )
    writes.save(*changed, *extra, "updated_at")
    if report.venue_order_id and report.kind in (ReportKind.ACK, ReportKind.REPLACED):
        writes.link(report)
    if report.kind == ReportKind.FILL:
        writes.flush()  # the fill, the position and the risk hook see the order as it is
        fill = Fill.objects.create(
            order=order,
            venue=order.venue,  # the loaded rows, so the live payload needs no query
            venue_trade_id=report.trade_id,
            account=order.account,
            instrument=order.instrument,
            side=order.side,
            quantity=report.quantity,
            price=report.price,
            fee=report.fee or ZERO,
            fee_currency=report.fee_currency or "",
            is_maker=report.is_maker,
            late=transition.late,
            executed_at=report.executed_at,
        )
        _apply_fill_to_position(fill)
        realtime.publish_on_commit(
            "fill.created", account_id=order.account_id, **payloads.fill_payload(fill, order=order)
        )
    writes.publish_order()
    return ApplyResult(order=order, applied=True, late=transition.late)


def _submitted_status() -> str:
    """What the lifecycle makes of a PENDING_NEW order that is sent: SUBMITTED, with no
    other field changed (``order_mark_submitted`` writes just the status)."""
    before = lc.OrderState(status=lc.OrderStatus.PENDING_NEW, quantity=Decimal(1), price=None)
    after = lc.apply(before, lc.OrderSubmitted()).state
    assert dataclasses.replace(after, status=before.status) == before, after
    return after.status.value


_SUBMITTED = _submitted_status()


def order_mark_submitted(
    *, order_id: int, enqueued_at: float | None = None, publish: bool = True
) -> Order | None:
    """PENDING_NEW -> SUBMITTED before the venue call. None if it is past PENDING_NEW
    (already submitted by another delivery of the task, canceled, denied).

    One statement (the order path's busiest write): the status change and its
    ``OrderSubmitted`` event. ``enqueued_at`` (epoch seconds, when the
    submit task was queued) is recorded in the event, so queueing delay is visible."""
    # No transaction.atomic(): its BEGIN and COMMIT would be two more round trips. The
    # statement is its own transaction (or joins the caller's, if one is open).
    order = rows.mark_submitted(order_id, **_mark_submitted_args(enqueued_at))
    if order is not None and publish:  # else the caller pushes it (publish_order)
        publish_order(order)  # at once when committed, else on the caller's commit
    return order


def order_send_mark_submitted(
    *, order_id: int, enqueued_at: float | None = None
) -> rows.PendingMark:
    """``order_mark_submitted`` sent without waiting for it (outside a transaction):
    the caller reads ``.result()`` and pushes the marked order (``publish_order``)."""
    return rows.send_mark_submitted(order_id, **_mark_submitted_args(enqueued_at))


def _mark_submitted_args(enqueued_at: float | None) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if enqueued_at is not None:
        payload["enqueued_at"] = enqueued_at
    return {
        "from_status": lc.OrderStatus.PENDING_NEW.value,
        "to_status": _SUBMITTED,
        "kind": lc.OrderSubmitted.kind,
        "source": "worker",
        "payload": payload,
        "now": timezone.now(),
    }


def order_mark_resend(*, order_id: int, min_age_s: float) -> Order | None:
    """Claim the right to send a SUBMITTED order again (the venue says it never received
    it). Under the row lock: only if it is still SUBMITTED and was last sent at least
    ``min_age_s`` ago, so two resolvers never both re-send, and a delayed first send can
    no longer execute (it is past the venue's receive window). Records ``OrderResent``."""
    from datetime import timedelta

    with transaction.atomic():
        order = _locked(order_id)
        if order.status != lc.OrderStatus.SUBMITTED.value:
            return None
        if order.updated_at > timezone.now() - timedelta(seconds=min_age_s):
            return None
        _append_event(
            order,
            kind="OrderResent",
            source="recon",
            payload={"client_order_id": order.venue_client_order_id},
        )
        order.save(update_fields=["event_sequence", "updated_at"])
        return order


def record_adoption(*, order: Order, unknown_id: int, user: str) -> None:
    """First event of an order adopted from the venue by reconciliation."""
    _append_event(
        order,
        kind="OrderAdopted",
        source="recon",
        payload={"unknown_venue_order": unknown_id, "by": user},
    )
    order.save(update_fields=["event_sequence"])
