"""FIX 4.4 and the OMS, field by field: the one place that says how they map.

Inbound: NewOrderSingle (D), OrderCancelRequest (F), OrderCancelReplaceRequest (G) and
OrderStatusRequest (H) fields become the engine's values (``parse_new_order``,
``parse_replace``...), or a ``FixInputError`` whose text names the tag. Outbound: the
facts the report listener records about an order (``OrderFacts``) become the fields of
an ExecutionReport (8) or an OrderCancelReject (9).

**OrdStatus** (39) is the order's status: the lifecycle (``orders/domain/lifecycle.py``)
keeps one status per order that already follows FIX 4.4's OrdStatus precedence (Vol. 4,
"Order State Change Matrices"): PendingCancel (6) and PendingReplace (E) stay while fills
race them, Filled (2) and Canceled (4) are final even with fills before them, and
PartiallyFilled (1) wins over New (0). Our PENDING_NEW and SUBMITTED are both FIX's
PendingNew (A): the venue has not acknowledged the order yet; our DENIED (our risk) and
REJECTED (the venue) are both Rejected (8).

**ExecType** (150) is what happened: the lifecycle event that made the change
(``EXEC_TYPES``); a refused cancel or replace is an OrderCancelReject instead
(``CANCEL_REJECT_RESPONSE_TO``); OrderSubmitted is no news to a FIX client.

Pure: imports nothing from Django or QuickFIX (fields are ``(tag, text)`` pairs).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from decimal import Decimal, InvalidOperation

from orders.domain.commands import SubmitOrder
from orders.domain.lifecycle import TERMINAL_STATUSES, OrderStatus

# --- tags ------------------------------------------------------------------------------

ACCOUNT = 1
AVG_PX = 6
CL_ORD_ID = 11
CUM_QTY = 14
EXEC_ID = 17
LAST_PX = 31
LAST_QTY = 32
ORDER_ID = 37
ORDER_QTY = 38
ORD_STATUS = 39
ORD_TYPE = 40
ORIG_CL_ORD_ID = 41
PRICE = 44
SIDE = 54
SYMBOL = 55
TEXT = 58
TIME_IN_FORCE = 59
TRANSACT_TIME = 60
POSS_RESEND = 97
EX_DESTINATION = 100
CXL_REJ_REASON = 102
ORD_REJ_REASON = 103
REF_SEQ_NUM = 45
REF_MSG_TYPE = 372
BUSINESS_REJECT_REASON = 380
CXL_REJ_RESPONSE_TO = 434
EXEC_TYPE = 150
LEAVES_QTY = 151
SECONDARY_EXEC_ID = 527  # the venue's trade id on a Trade report

TAG_NAMES = {
    ACCOUNT: "Account",
    CL_ORD_ID: "ClOrdID",
    ORDER_QTY: "OrderQty",
    ORD_TYPE: "OrdType",
    ORIG_CL_ORD_ID: "OrigClOrdID",
    PRICE: "Price",
    SIDE: "Side",
    SYMBOL: "Symbol",
    TIME_IN_FORCE: "TimeInForce",
    EX_DESTINATION: "ExDestination",
}

# the engine's field names (OmsError.field) in FIX terms
ENGINE_FIELD_TAGS = {
    "account": ACCOUNT,
    "symbol": SYMBOL,
    "side": SIDE,
    "type": ORD_TYPE,
    "quantity": ORDER_QTY,
    "price": PRICE,
    "time_in_force": TIME_IN_FORCE,
    "venue": EX_DESTINATION,
    "client_order_id": CL_ORD_ID,
}

MAX_CL_ORD_ID = 32  # the OMS's client order id column

# --- values ----------------------------------------------------------------------------

SIDES = {"1": "buy", "2": "sell"}
SIDE_CODES = {v: k for k, v in SIDES.items()}
ORD_TYPES = {"1": "market", "2": "limit"}
ORD_TYPE_CODES = {v: k for k, v in ORD_TYPES.items()}
TIMES_IN_FORCE = {"1": "GTC", "3": "IOC", "4": "FOK"}
TIME_IN_FORCE_CODES = {v: k for k, v in TIMES_IN_FORCE.items()}

ORD_STATUSES: Mapping[OrderStatus, str] = {
    OrderStatus.PENDING_NEW: "A",
    OrderStatus.SUBMITTED: "A",
    OrderStatus.ACCEPTED: "0",
    OrderStatus.PARTIALLY_FILLED: "1",
    OrderStatus.FILLED: "2",
    OrderStatus.PENDING_CANCEL: "6",
    OrderStatus.CANCELED: "4",
    OrderStatus.PENDING_REPLACE: "E",
    OrderStatus.DENIED: "8",
    OrderStatus.REJECTED: "8",
    OrderStatus.EXPIRED: "C",
}

# ExecType (150) by the lifecycle event that made the change
EXEC_TYPES: Mapping[str, str] = {
    "OrderCreated": "A",  # PendingNew: stored, passed risk, queued for the venue
    "OrderDenied": "8",  # Rejected by our risk
    "OrderRejected": "8",  # Rejected by the venue (or refused before it was sent)
    "OrderAccepted": "0",  # New: the venue acknowledged it
    "OrderFilled": "F",  # Trade
    "OrderCancelRequested": "6",  # PendingCancel
    "OrderCanceled": "4",  # Canceled (asked, IOC remainder, venue cancel)
    "OrderReplaceRequested": "E",  # PendingReplace
    "OrderReplaced": "5",  # Replaced
    "OrderExpired": "C",  # Expired
}
EXEC_TYPE_STATUS = "I"  # an answer to an OrderStatusRequest

# a refused cancel or replace: an OrderCancelReject, CxlRejResponseTo (434) by event
CANCEL_REJECT_RESPONSE_TO: Mapping[str, str] = {
    "OrderCancelRejected": "1",  # to an OrderCancelRequest
    "OrderReplaceRejected": "2",  # to an OrderCancelReplaceRequest
}

# CxlRejReason (102)
CXL_TOO_LATE = "0"
CXL_UNKNOWN_ORDER = "1"
CXL_ALREADY_PENDING = "3"
CXL_OTHER = "99"

# OrdRejReason (103)
REJ_BROKER_OPTION = "0"
REJ_UNKNOWN_SYMBOL = "1"
REJ_EXCEEDS_LIMIT = "3"
REJ_UNKNOWN_ORDER = "5"
REJ_DUPLICATE = "6"
REJ_UNKNOWN_ACCOUNT = "15"
REJ_OTHER = "99"

# BusinessRejectReason (380)
BIZ_OTHER = "0"
BIZ_UNKNOWN_ID = "1"
BIZ_UNSUPPORTED_TYPE = "3"
BIZ_REQUIRED_FIELD_MISSING = "5"


def tag_name(tag: int) -> str:
    """``Symbol (55)``: how texts name a field."""
    return f"{TAG_NAMES.get(tag, 'tag')} ({tag})"


def dec(value: Decimal | None) -> str:
    """A Decimal as FIX text: plain digits, no exponent, no trailing zeros."""
    if value is None:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# --- inbound ---------------------------------------------------------------------------


class FixInputError(ValueError):
    """A field a client sent is missing or wrong: ``text`` names its tag; ``reason`` is
    OrdRejReason (103) for an order, ``cxl_reason`` CxlRejReason for a cancel/replace."""

    def __init__(
        self, text: str, *, tag: int | None = None, reason: str = REJ_OTHER,
        cxl_reason: str = CXL_OTHER,
    ) -> None:  # fmt: skip
        super().__init__(text)
        self.text = text
        self.tag = tag
        self.reason = reason
        self.cxl_reason = cxl_reason


Fields = Mapping[int, str]


def _required(msg: Fields, tag: int) -> str:
    value = msg.get(tag, "")
    if not value:
        raise FixInputError(f"{tag_name(tag)} is required", tag=tag)
    return value


def _choice(msg: Fields, tag: int, table: Mapping[str, str], *, required: bool = True) -> str:
    value = _required(msg, tag) if required else msg.get(tag, "")
    if not value:
        return ""
    if value not in table:
        allowed = ", ".join(f"{code} ({name})" for code, name in table.items())
        raise FixInputError(f"{tag_name(tag)} {value!r} is not supported: use {allowed}", tag=tag)
    return table[value]


def _decimal(msg: Fields, tag: int, *, required: bool) -> Decimal | None:
    text = msg.get(tag, "")
    if not text:
        if required:
            raise FixInputError(f"{tag_name(tag)} is required", tag=tag)
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise FixInputError(f"{tag_name(tag)} {text!r} is not a number", tag=tag) from None
    if not value.is_finite() or value <= 0:
        raise FixInputError(f"{tag_name(tag)} must be positive, got {text!r}", tag=tag)
    return value


def cl_ord_id(msg: Fields, tag: int = CL_ORD_ID) -> str:
    value = _required(msg, tag)
    if len(value) > MAX_CL_ORD_ID:
        raise FixInputError(f"{tag_name(tag)} is longer than {MAX_CL_ORD_ID} characters", tag=tag)
    return value


def parse_new_order(msg: Fields, *, user_id: int | None) -> SubmitOrder:
    """A NewOrderSingle as the engine's ``SubmitOrder`` (source ``fix``); ClOrdID is the
    client order id. ExDestination absent: no venue (the router decides)."""
    order_type = _choice(msg, ORD_TYPE, ORD_TYPES)
    price = _decimal(msg, PRICE, required=False)
    if order_type == "market" and price is not None:
        raise FixInputError(f"{tag_name(PRICE)} is not allowed on a market order", tag=PRICE)
    if order_type == "limit" and price is None:
        raise FixInputError(f"{tag_name(PRICE)} is required on a limit order", tag=PRICE)
    quantity = _decimal(msg, ORDER_QTY, required=True)
    assert quantity is not None
    return SubmitOrder(
        account=_required(msg, ACCOUNT),
        symbol=_required(msg, SYMBOL),
        side=_choice(msg, SIDE, SIDES),
        type=order_type,
        quantity=quantity,
        price=price,
        time_in_force=_choice(msg, TIME_IN_FORCE, TIMES_IN_FORCE, required=False) or None,
        venue=msg.get(EX_DESTINATION) or None,
        client_order_id=cl_ord_id(msg),
        user_id=user_id,
        source="fix",
    )


@dataclass(frozen=True)
class Replace:
    """What an OrderCancelReplaceRequest asks for (None: unchanged)."""

    quantity: Decimal | None
    price: Decimal | None


def parse_replace(
    msg: Fields, *, side: str, symbol: str, order_type: str, quantity: Decimal,
    price: Decimal | None,
) -> Replace:  # fmt: skip
    """An OrderCancelReplaceRequest against the order as it stands: Side, Symbol and
    OrdType must be the order's (only OrderQty and Price change)."""
    if _choice(msg, SIDE, SIDES) != side:
        raise FixInputError(f"{tag_name(SIDE)} cannot change on a replace", tag=SIDE)
    if msg.get(SYMBOL) and msg[SYMBOL] != symbol:
        raise FixInputError(f"{tag_name(SYMBOL)} cannot change on a replace", tag=SYMBOL)
    if _choice(msg, ORD_TYPE, ORD_TYPES) != order_type:
        raise FixInputError(f"{tag_name(ORD_TYPE)} cannot change on a replace", tag=ORD_TYPE)
    new_quantity = _decimal(msg, ORDER_QTY, required=True)
    new_price = _decimal(msg, PRICE, required=False)
    if order_type == "market" and new_price is not None:
        raise FixInputError(f"{tag_name(PRICE)} is not allowed on a market order", tag=PRICE)
    return Replace(
        quantity=None if new_quantity == quantity else new_quantity,
        price=None if new_price is None or new_price == price else new_price,
    )


def engine_error_text(field: str | None, message: str) -> str:
    """An engine error (``OmsError``) in FIX terms: ``Symbol (55): unknown symbol ...``."""
    tag = ENGINE_FIELD_TAGS.get(field or "")
    if tag is None:
        return message
    prefix = f"{field}: "
    return f"{tag_name(tag)}: {message.removeprefix(prefix)}"


def rej_reason_for(field: str | None) -> str:
    """OrdRejReason (103) for an engine validation error about ``field``."""
    if field == "symbol":
        return REJ_UNKNOWN_SYMBOL
    if field == "account":
        return REJ_UNKNOWN_ACCOUNT
    return REJ_OTHER


# --- outbound --------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFacts:
    """An order as one change left it: what the report listener records (as strings, in
    a Redis stream) and an execution report is built from. ``kind``: the lifecycle
    event of the change (``OrderCreated`` for a new order); ``seq``: the order's event
    sequence after it; ``last_qty``/``last_px``/``trade_id``: the fill, on a Trade."""

    order_id: int
    seq: int
    kind: str
    status: str
    client_order_id: str
    account: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: str
    filled: Decimal
    average_price: Decimal | None
    reason: str = ""
    last_qty: Decimal | None = None
    last_px: Decimal | None = None
    trade_id: str = ""
    venue_order_id: str = ""

    @property
    def leaves(self) -> Decimal:
        if OrderStatus(self.status) in TERMINAL_STATUSES:
            return Decimal(0)
        return self.quantity - self.filled

    @property
    def exec_id(self) -> str:
        """Unique per order change (a resend of the same change carries the same id)."""
        return f"{self.order_id}-{self.seq}"

    def to_record(self) -> dict[str, str]:
        record: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value is None or value == "":
                continue
            record[name] = format(value, "f") if isinstance(value, Decimal) else str(value)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, str]) -> OrderFacts:
        values: dict[str, object] = {"price": None, "average_price": None}
        for f in fields(cls):
            text = record.get(f.name)
            if text is None:
                continue
            if f.name in ("order_id", "seq"):
                values[f.name] = int(text)
            elif f.name in _DECIMAL_FACTS:
                values[f.name] = Decimal(text)
            else:
                values[f.name] = text
        return cls(**values)  # type: ignore[arg-type]


_DECIMAL_FACTS = frozenset({"quantity", "price", "filled", "average_price", "last_qty", "last_px"})


def ord_status(status: str) -> str:
    return ORD_STATUSES[OrderStatus(status)]


def report_kind(kind: str) -> str | None:
    """``"8"`` (an ExecutionReport), ``"9"`` (an OrderCancelReject) or None (nothing to
    tell a FIX client) for a change made by lifecycle event ``kind``."""
    if kind in EXEC_TYPES:
        return "8"
    if kind in CANCEL_REJECT_RESPONSE_TO:
        return "9"
    return None


def execution_report(
    facts: OrderFacts,
    *,
    cl_ord_id: str,
    orig_cl_ord_id: str | None = None,
    exec_type: str | None = None,
    exec_id: str | None = None,
    text: str | None = None,
) -> list[tuple[int, str]]:
    """The body of an ExecutionReport (8) for ``facts``; ``exec_type`` None: the one the
    change's event gives (``EXEC_TYPES``)."""
    exec_type = exec_type or EXEC_TYPES[facts.kind]
    body: list[tuple[int, str]] = [
        (ORDER_ID, str(facts.order_id)),
        (CL_ORD_ID, cl_ord_id),
    ]
    if orig_cl_ord_id:
        body.append((ORIG_CL_ORD_ID, orig_cl_ord_id))
    body += [
        (EXEC_ID, exec_id or facts.exec_id),
        (EXEC_TYPE, exec_type),
        (ORD_STATUS, ord_status(facts.status)),
    ]
    if facts.status in _REJECTED:
        denied = facts.status == OrderStatus.DENIED.value  # our risk: a limit
        body.append((ORD_REJ_REASON, REJ_EXCEEDS_LIMIT if denied else REJ_BROKER_OPTION))
    body += [
        (ACCOUNT, facts.account),
        (SYMBOL, facts.symbol),
        (SIDE, SIDE_CODES[facts.side]),
        (ORDER_QTY, dec(facts.quantity)),
        (ORD_TYPE, ORD_TYPE_CODES[facts.type]),
    ]
    if facts.price is not None:
        body.append((PRICE, dec(facts.price)))
    if facts.time_in_force in TIME_IN_FORCE_CODES:
        body.append((TIME_IN_FORCE, TIME_IN_FORCE_CODES[facts.time_in_force]))
    if exec_type == "F" and facts.last_qty is not None and facts.last_px is not None:
        body += [(LAST_QTY, dec(facts.last_qty)), (LAST_PX, dec(facts.last_px))]
        if facts.trade_id:
            body.append((SECONDARY_EXEC_ID, facts.trade_id))
    body += [
        (LEAVES_QTY, dec(facts.leaves)),
        (CUM_QTY, dec(facts.filled)),
        (AVG_PX, dec(facts.average_price)),
    ]
    reason = text if text is not None else facts.reason
    if reason and (exec_type in ("8", "4", "C") or text is not None):
        body.append((TEXT, reason))
    return body


_REJECTED = frozenset({OrderStatus.DENIED.value, OrderStatus.REJECTED.value})


def cancel_reject(
    *,
    order_id: str,
    cl_ord_id: str,
    orig_cl_ord_id: str,
    status: str | None,
    response_to: str,
    reason: str,
    text: str,
) -> list[tuple[int, str]]:
    """The body of an OrderCancelReject (9). ``status`` None: no such order (OrdStatus
    Rejected, OrderID ``NONE``)."""
    return [
        (ORDER_ID, order_id),
        (CL_ORD_ID, cl_ord_id),
        (ORIG_CL_ORD_ID, orig_cl_ord_id),
        (ORD_STATUS, ord_status(status) if status else "8"),
        (CXL_REJ_RESPONSE_TO, response_to),
        (CXL_REJ_REASON, reason),
        (TEXT, text),
    ]


def order_reject(
    msg: Fields, *, exec_id: str, text: str, reason: str = REJ_OTHER
) -> list[tuple[int, str]]:
    """The body of an ExecutionReport Rejected for a NewOrderSingle that made no order
    (bad input, a duplicate ClOrdID): OrderID ``NONE``, the request's own fields."""
    body: list[tuple[int, str]] = [
        (ORDER_ID, "NONE"),
        (CL_ORD_ID, msg.get(CL_ORD_ID) or "NONE"),
        (EXEC_ID, exec_id),
        (EXEC_TYPE, "8"),
        (ORD_STATUS, "8"),
        (ORD_REJ_REASON, reason),
    ]
    for tag in (ACCOUNT, SYMBOL, SIDE, ORDER_QTY, ORD_TYPE, PRICE):
        if msg.get(tag):
            body.append((tag, msg[tag]))
    body += [(LEAVES_QTY, "0"), (CUM_QTY, "0"), (AVG_PX, "0"), (TEXT, text)]
    return body
