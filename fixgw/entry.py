"""Order entry over FIX: NewOrderSingle (D), OrderCancelRequest (F),
OrderCancelReplaceRequest (G) and OrderStatusRequest (H) as the execution engine's
commands, for the session's user (the same permissions as the REST API:
``orders/access.py``), source ``fix``.

Each handler runs for the session's QuickFIX thread and returns at once with what to
answer now: a refusal (ExecutionReport Rejected, OrderCancelReject), a status, or a new
order's PendingNew (or Rejected, when risk denied it). What the engine then does is
reported from the user's report stream (``fixgw/reports.py``): New, fills,
PendingCancel... So a message is consumed (its sequence number
taken) only once its order is committed, and a gateway killed in between gets it again
by sequence-number recovery; the ClOrdID then makes the repeat harmless.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import IntegrityError, transaction

from fixgw import mapping as m
from fixgw.listener import facts
from fixgw.mapping import Fields, FixInputError
from fixgw.models import FixRequest
from fixgw.reports import Reply, current_cl_ord_id
from orders import engine
from orders.access import visible_accounts
from orders.domain import lifecycle as lc
from orders.domain.commands import CancelOrder, ModifyOrder
from orders.domain.errors import OmsError, OrderConflict, OrderRiskDenied
from orders.models import Order

PENDING = {lc.OrderStatus.PENDING_CANCEL.value, lc.OrderStatus.PENDING_REPLACE.value}
TERMINAL = {s.value for s in lc.TERMINAL_STATUSES}


def _exec_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def _reject(msg: Fields, text: str, reason: str = m.REJ_OTHER) -> list[Reply]:
    return [("8", m.order_reject(msg, exec_id=_exec_id("rej"), text=text, reason=reason))]


def _status(order: Order, *, text: str | None = None) -> list[Reply]:
    f = facts(order, kind="OrderStatus")
    cl = current_cl_ord_id(order.pk, order.client_order_id, order.event_sequence + 1)
    body = m.execution_report(
        f, cl_ord_id=cl, exec_type=m.EXEC_TYPE_STATUS, exec_id=_exec_id("st"), text=text
    )
    return [("8", body)]


def _report(order: Order, kind: str) -> list[Reply]:
    """The report of the change a NewOrderSingle just made, sent at once rather than
    after its trip through the stream; its record in the stream has the same ExecID,
    and the gateway sends each ExecID once per session (``Gateway._send``)."""
    return [("8", m.execution_report(facts(order, kind=kind), cl_ord_id=order.client_order_id))]


def _resent(msg: Fields) -> bool:
    return msg.get(m.POSS_RESEND) == "Y" or msg.get(43) == "Y"  # PossResend, PossDupFlag


# --- D ---------------------------------------------------------------------------------


def new_order(msg: Fields, *, user: Any) -> list[Reply]:
    try:
        command = m.parse_new_order(msg, user_id=user.pk)
    except FixInputError as error:
        return _reject(msg, error.text, error.reason)
    cl = command.client_order_id
    if FixRequest.objects.filter(account__code=command.account, cl_ord_id=cl).exists():
        return _reject(msg, f"{m.tag_name(m.CL_ORD_ID)} {cl!r} was already used", m.REJ_DUPLICATE)
    try:
        result = engine.execute(command)
    except OrderRiskDenied as denied:  # stored DENIED, like a REST denial
        return _report(denied.order, "OrderDenied")
    except OrderConflict:
        return _reject(
            msg, f"{m.tag_name(m.CL_ORD_ID)} {cl!r} was already used for another order",
            m.REJ_DUPLICATE,
        )  # fmt: skip
    except OmsError as error:
        return _reject(
            msg, m.engine_error_text(error.field, error.message), m.rej_reason_for(error.field)
        )
    if result.created:
        return _report(result.order, "OrderCreated")  # New and fills follow from the stream
    if _resent(msg):  # the same request again: say where the order stands
        return _status(_loaded(result.order.pk))
    return _reject(
        msg, f"{m.tag_name(m.CL_ORD_ID)} {cl!r} was already used (order {result.order.pk})",
        m.REJ_DUPLICATE,
    )  # fmt: skip


# --- F, G ------------------------------------------------------------------------------


def _loaded(order_id: int) -> Order:
    return Order.objects.select_related("account", "instrument", "venue").get(pk=order_id)


def find_order(user: Any, cl_ord_id: str, account: str | None) -> Order | None:
    """The order a client calls ``cl_ord_id``: its client order id, or the ClOrdID of a
    FIX replace it went through; among the accounts the user may see."""
    accounts = visible_accounts(user)
    if account:
        accounts = accounts.filter(code=account)
    replaced = (
        FixRequest.objects.filter(
            account__in=accounts, cl_ord_id=cl_ord_id, kind=FixRequest.Kind.REPLACE, replaced=True
        )
        .values_list("order_id", flat=True)
        .first()
    )
    if replaced:
        return _loaded(replaced)
    return (
        Order.objects.select_related("account", "instrument", "venue")
        .filter(account__in=accounts, client_order_id=cl_ord_id)
        .order_by("-id")
        .first()
    )


def _cxl_reject(
    msg: Fields, order: Order | None, response_to: str, reason: str, text: str
) -> list[Reply]:
    return [("9", m.cancel_reject(
        order_id=str(order.pk) if order else "NONE",
        cl_ord_id=msg.get(m.CL_ORD_ID) or "NONE",
        orig_cl_ord_id=msg.get(m.ORIG_CL_ORD_ID) or "NONE",
        status=order.status if order else None,
        response_to=response_to, reason=reason, text=text,
    ))]  # fmt: skip


def _target(msg: Fields, user: Any, response_to: str) -> Order | list[Reply]:
    """The order a cancel or replace is about, or the OrderCancelReject to send."""
    try:
        cl = m.cl_ord_id(msg)
        orig = m.cl_ord_id(msg, m.ORIG_CL_ORD_ID)
    except FixInputError as error:
        return _cxl_reject(msg, None, response_to, m.CXL_OTHER, error.text)
    order = find_order(user, orig, msg.get(m.ACCOUNT))
    if order is None:
        text = f"{m.tag_name(m.ORIG_CL_ORD_ID)} {orig!r}: no such order"
        return _cxl_reject(msg, None, response_to, m.CXL_UNKNOWN_ORDER, text)
    used = FixRequest.objects.filter(account=order.account_id, cl_ord_id=cl).exists()
    if used or Order.objects.filter(account=order.account_id, client_order_id=cl).exists():
        text = f"{m.tag_name(m.CL_ORD_ID)} {cl!r} was already used"
        return _cxl_reject(msg, order, response_to, m.CXL_OTHER, text)
    if order.status in PENDING:
        text = f"order {order.pk} is {order.status}: a cancel or replace is already pending"
        return _cxl_reject(msg, order, response_to, m.CXL_ALREADY_PENDING, text)
    if order.status in TERMINAL:
        text = f"order {order.pk} is {order.status}: too late"
        return _cxl_reject(msg, order, response_to, m.CXL_TOO_LATE, text)
    return order


def _request(order: Order, msg: Fields, kind: str) -> FixRequest:
    return FixRequest.objects.create(
        account_id=order.account_id, order=order, kind=kind, cl_ord_id=msg[m.CL_ORD_ID],
        orig_cl_ord_id=msg[m.ORIG_CL_ORD_ID], after_seq=order.event_sequence,
    )  # fmt: skip


def cancel(msg: Fields, *, user: Any) -> list[Reply]:
    target = _target(msg, user, "1")
    if not isinstance(target, Order):
        return target
    order = target
    try:
        with transaction.atomic():  # the request's ids are committed with the change
            _request(order, msg, FixRequest.Kind.CANCEL)
            engine.execute(CancelOrder(order_id=order.pk, reason="FIX cancel", source="fix"))
    except IntegrityError:
        return _cxl_reject(
            msg, order, "1", m.CXL_OTHER, f"{m.tag_name(m.CL_ORD_ID)} was already used"
        )
    except OmsError as error:
        order.refresh_from_db(fields=["status"])
        reason = m.CXL_ALREADY_PENDING if order.status in PENDING else m.CXL_TOO_LATE
        return _cxl_reject(msg, order, "1", reason, error.message)
    return []  # PendingCancel, then Canceled, from the stream


def replace(msg: Fields, *, user: Any) -> list[Reply]:
    target = _target(msg, user, "2")
    if not isinstance(target, Order):
        return target
    order = target
    try:
        change = m.parse_replace(
            msg, side=order.side, symbol=order.instrument.symbol, order_type=order.type,
            quantity=order.quantity, price=order.price,
        )  # fmt: skip
    except FixInputError as error:
        return _cxl_reject(msg, order, "2", m.CXL_OTHER, error.text)
    if change.quantity is None and change.price is None:
        text = "nothing to change: OrderQty (38) and Price (44) are the order's"
        return _cxl_reject(msg, order, "2", m.CXL_OTHER, text)
    denied: OrderRiskDenied | None = None
    try:
        with transaction.atomic():
            request = _request(order, msg, FixRequest.Kind.REPLACE)
            command = ModifyOrder(
                order_id=order.pk, quantity=change.quantity, price=change.price, source="fix"
            )
            try:
                engine.execute(command)
            except OrderRiskDenied as error:  # the refusal stays on the order's record
                denied = error
                FixRequest.objects.filter(pk=request.pk).update(answered_seq=0)
    except IntegrityError:
        return _cxl_reject(
            msg, order, "2", m.CXL_OTHER, f"{m.tag_name(m.CL_ORD_ID)} was already used"
        )
    except OmsError as error:
        order.refresh_from_db(fields=["status"])
        reason = m.CXL_ALREADY_PENDING if order.status in PENDING else m.CXL_OTHER
        text = m.engine_error_text(error.field, error.message)
        return _cxl_reject(msg, order, "2", reason, text)
    if denied is not None:
        reasons = "; ".join(r.get("message") or r.get("check", "") for r in denied.reasons)
        return _cxl_reject(msg, order, "2", m.CXL_OTHER, f"denied by pre-trade risk: {reasons}")
    return []  # PendingReplace, then Replaced, from the stream


# --- H ---------------------------------------------------------------------------------


def status(msg: Fields, *, user: Any) -> list[Reply]:
    cl = msg.get(m.CL_ORD_ID, "")
    order = find_order(user, cl, msg.get(m.ACCOUNT)) if cl else None
    if order is None:
        body = m.order_reject(
            msg, exec_id=_exec_id("st"), text=f"{m.tag_name(m.CL_ORD_ID)} {cl!r}: no such order",
            reason=m.REJ_UNKNOWN_ORDER,
        )  # fmt: skip
        body = [
            (m.EXEC_TYPE, m.EXEC_TYPE_STATUS) if tag == m.EXEC_TYPE else (tag, v) for tag, v in body
        ]
        return [("8", body)]
    return _status(order)


HANDLERS = {"D": new_order, "F": cancel, "G": replace, "H": status}
