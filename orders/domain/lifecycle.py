"""The order lifecycle: a pure state machine over immutable order states.

`apply(state, event)` is the only way an order changes. It looks the move up in
`TRANSITIONS` (the single transition table), computes the new `OrderState`, checks the
invariants and returns a `Transition`. It never mutates anything, reads no clock and
imports nothing from Django: the same code runs in the web services and the backtester.

Statuses and races follow FIX OrdStatus/ExecType (see DESIGN.md section 4).

Average price: `filled_notional` is kept exact (sum of quantity * price of every fill,
computed without rounding) and `average_price` is `filled_notional / filled_quantity`
rounded to 28 significant digits, ROUND_HALF_EVEN (see `vwap`). Both are independent of
the caller's decimal context, so the backtester and the services agree to the digit.
The average is recomputed (and checked) on every fill; other events carry it over as
given, so a state rebuilt from a row whose average was rounded to the column's scale
still applies cleanly.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, TypeAlias

from orders.domain.errors import OmsError


class OrderStatus(StrEnum):
    PENDING_NEW = "PENDING_NEW"  # persisted, not yet sent
    DENIED = "DENIED"  # our risk refused it
    SUBMITTED = "SUBMITTED"  # sent, no venue answer yet
    ACCEPTED = "ACCEPTED"  # working at the venue
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    PENDING_REPLACE = "PENDING_REPLACE"
    REJECTED = "REJECTED"  # the venue refused it
    EXPIRED = "EXPIRED"


TERMINAL_STATUSES: frozenset[OrderStatus] = frozenset(
    {
        OrderStatus.DENIED,
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.EXPIRED,
    }
)

# Live at the venue, or possibly live (sent and not known to be dead).
WORKING_STATUSES: frozenset[OrderStatus] = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.PENDING_CANCEL,
        OrderStatus.PENDING_REPLACE,
    }
)

# Not finished: everything that is not terminal (PENDING_NEW too). What risk counts as
# open orders and exposure, and what cancel-all and the kill switch cancel.
OPEN_STATUSES: frozenset[OrderStatus] = frozenset(OrderStatus) - TERMINAL_STATUSES

# A working order at the venue that an amend may change.
AMENDABLE_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED}
)

# Waiting for the venue's answer to our cancel or replace.
PENDING_ANSWER_STATUSES: frozenset[OrderStatus] = frozenset(
    {OrderStatus.SUBMITTED, OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE}
)


def values(statuses: frozenset[OrderStatus]) -> list[str]:
    """The statuses as sorted strings, for a query filter."""
    return sorted(s.value for s in statuses)


_PENDING_STATUSES = frozenset({OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE})
# Statuses a pending cancel/replace can be requested from, hence can return to.
_RESTORABLE_STATUSES = frozenset(
    {OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED}
)
# Statuses in which nothing can have been filled yet.
_UNFILLED_STATUSES = frozenset(
    {
        OrderStatus.PENDING_NEW,
        OrderStatus.DENIED,
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.REJECTED,
    }
)


class LifecycleError(OmsError):
    """Base class of the errors `apply` raises; the state passed in is never changed."""

    status_code = 409
    code = "ORDER_STATE_CONFLICT"


class InvalidTransition(LifecycleError):
    """The event is not allowed in the order's current status."""

    def __init__(self, from_status: OrderStatus, event_kind: str, detail: str = "") -> None:
        self.from_status = from_status
        self.event_kind = event_kind
        target = _NOMINAL_TARGETS.get(event_kind, "?")
        message = f"{from_status} -> {target} ({event_kind})"
        if detail:
            message = f"{message}: {detail}"
        super().__init__(message)


class InvariantViolation(LifecycleError):
    """The event would break a quantity/price invariant (overfill, bad fill values...)."""


# --- Events (past tense; `kind` is the stable name stored with the event) -----------


@dataclass(frozen=True, slots=True)
class OrderDenied:
    """Our own risk checks refused the order before it was sent."""

    kind: ClassVar[str] = "OrderDenied"
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OrderSubmitted:
    """The order was sent to the venue."""

    kind: ClassVar[str] = "OrderSubmitted"


@dataclass(frozen=True, slots=True)
class OrderAccepted:
    """The venue acknowledged the order (FIX ExecType=New)."""

    kind: ClassVar[str] = "OrderAccepted"
    venue_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderRejected:
    """The venue (or our gateway, before sending) refused the order."""

    kind: ClassVar[str] = "OrderRejected"
    reason: str


@dataclass(frozen=True, slots=True)
class OrderFilled:
    """A partial or full execution (FIX ExecType=Trade). Dedupe on trade_id is the caller's job."""

    kind: ClassVar[str] = "OrderFilled"
    trade_id: str
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True, slots=True)
class OrderCancelRequested:
    """We asked the venue to cancel the order."""

    kind: ClassVar[str] = "OrderCancelRequested"


@dataclass(frozen=True, slots=True)
class OrderCanceled:
    """The order is dead at the venue: cancel confirmed, IOC remainder, venue cancel."""

    kind: ClassVar[str] = "OrderCanceled"
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OrderCancelRejected:
    """The venue refused our cancel (FIX OrderCancelReject)."""

    kind: ClassVar[str] = "OrderCancelRejected"
    reason: str


@dataclass(frozen=True, slots=True)
class OrderReplaceRequested:
    """We asked the venue to amend quantity and/or price (None = unchanged)."""

    kind: ClassVar[str] = "OrderReplaceRequested"
    quantity: Decimal | None
    price: Decimal | None


@dataclass(frozen=True, slots=True)
class OrderReplaced:
    """The venue confirmed the amend; carries the order's values after it (price None = market)."""

    kind: ClassVar[str] = "OrderReplaced"
    quantity: Decimal
    price: Decimal | None
    venue_order_id: str | None = None


@dataclass(frozen=True, slots=True)
class OrderReplaceRejected:
    """The venue refused our amend (FIX OrderCancelReject on a replace)."""

    kind: ClassVar[str] = "OrderReplaceRejected"
    reason: str


@dataclass(frozen=True, slots=True)
class OrderExpired:
    """The order's time in force ran out at the venue."""

    kind: ClassVar[str] = "OrderExpired"
    reason: str = ""


OrderEvent: TypeAlias = (
    OrderDenied
    | OrderSubmitted
    | OrderAccepted
    | OrderRejected
    | OrderFilled
    | OrderCancelRequested
    | OrderCanceled
    | OrderCancelRejected
    | OrderReplaceRequested
    | OrderReplaced
    | OrderReplaceRejected
    | OrderExpired
)

# kind -> class, to rebuild events stored as (kind, payload).
EVENT_CLASSES: Mapping[str, type[OrderEvent]] = MappingProxyType(
    {
        cls.kind: cls
        for cls in (
            OrderDenied,
            OrderSubmitted,
            OrderAccepted,
            OrderRejected,
            OrderFilled,
            OrderCancelRequested,
            OrderCanceled,
            OrderCancelRejected,
            OrderReplaceRequested,
            OrderReplaced,
            OrderReplaceRejected,
            OrderExpired,
        )
    }
)

# Where each event normally leads; only used to word InvalidTransition messages.
_NOMINAL_TARGETS: Mapping[str, str] = MappingProxyType(
    {
        OrderDenied.kind: OrderStatus.DENIED,
        OrderSubmitted.kind: OrderStatus.SUBMITTED,
        OrderAccepted.kind: OrderStatus.ACCEPTED,
        OrderRejected.kind: OrderStatus.REJECTED,
        OrderFilled.kind: "PARTIALLY_FILLED|FILLED",
        OrderCancelRequested.kind: OrderStatus.PENDING_CANCEL,
        OrderCanceled.kind: OrderStatus.CANCELED,
        OrderCancelRejected.kind: "prior status",
        OrderReplaceRequested.kind: OrderStatus.PENDING_REPLACE,
        OrderReplaced.kind: "ACCEPTED|PARTIALLY_FILLED|FILLED",
        OrderReplaceRejected.kind: "prior status",
        OrderExpired.kind: OrderStatus.EXPIRED,
    }
)


# --- State ---------------------------------------------------------------------------

# Exact arithmetic for the notional: any rounding raises instead of drifting silently.
_EXACT = Context(prec=200, traps=[InvalidOperation, Inexact])
# Fixed context for the average so the result never depends on the caller's context.
_AVERAGE = Context(prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])


def vwap(notional: Decimal, quantity: Decimal) -> Decimal | None:
    """Average price of fills totalling `quantity` and `notional`; None when nothing filled."""
    if quantity == 0:
        return None
    return _AVERAGE.divide(notional, quantity)


@dataclass(frozen=True, slots=True)
class OrderState:
    status: OrderStatus
    quantity: Decimal
    price: Decimal | None
    filled_quantity: Decimal = Decimal(0)
    average_price: Decimal | None = None  # vwap(filled_notional, filled_quantity)
    prior_status: OrderStatus | None = None  # where a rejected cancel/replace returns to
    venue_order_id: str | None = None
    pending_quantity: Decimal | None = None  # requested amend while PENDING_REPLACE
    pending_price: Decimal | None = None
    filled_notional: Decimal = Decimal(0)  # exact sum of fill quantity * price

    @property
    def leaves_quantity(self) -> Decimal:
        if self.is_terminal:
            return Decimal(0)
        return self.quantity - self.filled_quantity

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def is_working(self) -> bool:
        return self.status in WORKING_STATUSES


@dataclass(frozen=True, slots=True)
class Transition:
    state: OrderState  # the new state
    late: bool = False  # a fill applied after CANCELED/EXPIRED, as a flagged correction
    noop: bool = False  # the new state equals the old one (duplicate or too-late message)


# --- The transition table ------------------------------------------------------------


class Computed(enum.Enum):
    """Table entries whose target status depends on quantities or on the prior status."""

    FILL = enum.auto()  # PARTIALLY_FILLED, or FILLED when the fill completes the order
    FILL_KEEP_PENDING = enum.auto()  # stay PENDING_*, or FILLED when the fill completes it
    LATE_FILL = enum.auto()  # stay CANCELED/EXPIRED (or FILLED if complete); flagged late
    ACK_AGAIN = enum.auto()  # keep status; record venue_order_id if we did not have it
    IGNORE = enum.auto()  # duplicate or too-late message: state unchanged
    RESTORE_PRIOR = enum.auto()  # back to prior_status, PARTIALLY_FILLED if fills came in
    REPLACED = enum.auto()  # new quantity/price; ACCEPTED, PARTIALLY_FILLED or FILLED
    REJECT_IN_DOUBT = enum.auto()  # REJECTED, only if the venue never had the order


S = OrderStatus
C = Computed
_ACCEPTED = OrderAccepted.kind
_CANCEL_REJECTED = OrderCancelRejected.kind
_CANCEL_REQUESTED = OrderCancelRequested.kind
_CANCELED = OrderCanceled.kind
_DENIED = OrderDenied.kind
_EXPIRED = OrderExpired.kind
_FILLED = OrderFilled.kind
_REJECTED = OrderRejected.kind
_REPLACE_REJECTED = OrderReplaceRejected.kind
_REPLACE_REQUESTED = OrderReplaceRequested.kind
_REPLACED = OrderReplaced.kind
_SUBMITTED = OrderSubmitted.kind

# (from status, event kind) -> target status, or how to compute it. Anything missing
# raises InvalidTransition. Terminal statuses only appear for tolerated duplicates and
# late fills.
TRANSITIONS: Mapping[tuple[OrderStatus, str], OrderStatus | Computed] = MappingProxyType(
    {
        # --- not sent yet
        (S.PENDING_NEW, _DENIED): S.DENIED,
        (S.PENDING_NEW, _SUBMITTED): S.SUBMITTED,
        # Refused before it left (breaker open, gateway down): nothing at the venue.
        (S.PENDING_NEW, _REJECTED): S.REJECTED,
        # Canceled before it was sent: nothing at the venue, no request needed.
        (S.PENDING_NEW, _CANCELED): S.CANCELED,
        # --- sent, no answer yet
        (S.SUBMITTED, _ACCEPTED): S.ACCEPTED,
        (S.SUBMITTED, _REJECTED): S.REJECTED,
        # Fill before (or without) the ack: market and IOC orders on many venues.
        (S.SUBMITTED, _FILLED): C.FILL,
        # IOC/FOK with nothing filled, reported without an ack.
        (S.SUBMITTED, _CANCELED): S.CANCELED,
        (S.SUBMITTED, _EXPIRED): S.EXPIRED,
        # Cancel while in doubt (ack lost or slow); the venue answers either way.
        (S.SUBMITTED, _CANCEL_REQUESTED): S.PENDING_CANCEL,
        # --- working
        (S.ACCEPTED, _ACCEPTED): C.ACK_AGAIN,  # duplicate ack tolerated
        (S.ACCEPTED, _FILLED): C.FILL,
        (S.ACCEPTED, _CANCEL_REQUESTED): S.PENDING_CANCEL,
        (S.ACCEPTED, _REPLACE_REQUESTED): S.PENDING_REPLACE,
        (S.ACCEPTED, _CANCELED): S.CANCELED,  # unsolicited: venue cancel, IOC remainder
        (S.ACCEPTED, _EXPIRED): S.EXPIRED,
        # Duplicate ack, or the ack arriving after a fill that beat it (market orders).
        (S.PARTIALLY_FILLED, _ACCEPTED): C.ACK_AGAIN,
        (S.PARTIALLY_FILLED, _FILLED): C.FILL,
        (S.PARTIALLY_FILLED, _CANCEL_REQUESTED): S.PENDING_CANCEL,
        (S.PARTIALLY_FILLED, _REPLACE_REQUESTED): S.PENDING_REPLACE,
        (S.PARTIALLY_FILLED, _CANCELED): S.CANCELED,  # IOC remainder canceled, venue cancel
        (S.PARTIALLY_FILLED, _EXPIRED): S.EXPIRED,
        # --- cancel in flight
        # Fill racing a cancel: it happened, apply it; still waiting for the cancel answer.
        (S.PENDING_CANCEL, _FILLED): C.FILL_KEEP_PENDING,
        (S.PENDING_CANCEL, _CANCELED): S.CANCELED,
        (S.PENDING_CANCEL, _CANCEL_REJECTED): C.RESTORE_PRIOR,
        # Ack arriving after our cancel request (we canceled while SUBMITTED).
        (S.PENDING_CANCEL, _ACCEPTED): C.ACK_AGAIN,
        # Repeated cancel request (user double click, retry): one request is in flight.
        (S.PENDING_CANCEL, _CANCEL_REQUESTED): C.IGNORE,
        # The venue refused the order itself while our in-doubt cancel was in flight.
        (S.PENDING_CANCEL, _REJECTED): C.REJECT_IN_DOUBT,
        # Time in force ran out before our cancel reached the venue.
        (S.PENDING_CANCEL, _EXPIRED): S.EXPIRED,
        # --- replace in flight
        # Fill racing a replace: applied against the order as it stands.
        (S.PENDING_REPLACE, _FILLED): C.FILL_KEEP_PENDING,
        (S.PENDING_REPLACE, _REPLACED): C.REPLACED,
        (S.PENDING_REPLACE, _REPLACE_REJECTED): C.RESTORE_PRIOR,
        # The venue canceled the order (or its remainder) instead of amending it.
        (S.PENDING_REPLACE, _CANCELED): S.CANCELED,
        (S.PENDING_REPLACE, _EXPIRED): S.EXPIRED,
        (S.PENDING_REPLACE, _ACCEPTED): C.ACK_AGAIN,  # duplicate ack tolerated
        # --- terminal: only tolerated duplicates, too-late answers and late fills
        # A fill on a FILLED order is an overfill: the FILL rule raises InvariantViolation.
        (S.FILLED, _FILLED): C.FILL,
        # Ack arriving after the fill that completed the order (market orders).
        (S.FILLED, _ACCEPTED): C.IGNORE,
        # "Too late to cancel/replace": the fill completed the order first.
        (S.FILLED, _CANCEL_REJECTED): C.IGNORE,
        (S.FILLED, _REPLACE_REJECTED): C.IGNORE,
        (S.CANCELED, _CANCELED): C.IGNORE,  # duplicate cancel confirmation
        (S.CANCELED, _ACCEPTED): C.IGNORE,  # ack arriving after an IOC cancel
        # Fill the venue executed before the cancel but reported after it: a correction.
        (S.CANCELED, _FILLED): C.LATE_FILL,
        (S.EXPIRED, _EXPIRED): C.IGNORE,  # duplicate expiry
        (S.EXPIRED, _ACCEPTED): C.IGNORE,  # ack arriving after an IOC expiry
        (S.EXPIRED, _FILLED): C.LATE_FILL,  # executed before expiry, reported after
    }
)
del S, C


# --- apply ---------------------------------------------------------------------------


def can_apply(status: OrderStatus | str, event_kind: str) -> bool:
    """Whether the table has a move for ``event_kind`` from ``status`` (it may still be
    refused by an invariant, or be a tolerated no-op)."""
    return (OrderStatus(status), event_kind) in TRANSITIONS


def new_order(*, quantity: Decimal, price: Decimal | None) -> OrderState:
    """A new order, persisted but not sent (PENDING_NEW). price None means a market order."""
    _require_positive("quantity", quantity)
    if price is not None:
        _require_positive("price", price)
    state = OrderState(status=OrderStatus.PENDING_NEW, quantity=quantity, price=price)
    _check_invariants(state)
    return state


def apply(state: OrderState, event: OrderEvent) -> Transition:
    """Apply one event to an order state and return the new state; pure.

    Raises InvalidTransition when the event is not allowed in the current status and
    InvariantViolation when it would break a quantity/price invariant (overfill, a fill
    of zero, an amend below the filled quantity...). Either way nothing changes.
    """
    rule = TRANSITIONS.get((state.status, event.kind))
    if rule is None:
        raise InvalidTransition(state.status, event.kind)
    late = rule is Computed.LATE_FILL
    new_state = _next_state(state, event, rule)
    _check_invariants(new_state, previous=state, late=late)
    if new_state == state:
        return Transition(state=state, noop=True)
    return Transition(state=new_state, late=late)


def _next_state(state: OrderState, event: OrderEvent, rule: OrderStatus | Computed) -> OrderState:
    if isinstance(rule, OrderStatus):
        return _move(state, event, rule)
    if rule is Computed.IGNORE:
        return state
    if rule in (Computed.FILL, Computed.FILL_KEEP_PENDING, Computed.LATE_FILL):
        assert isinstance(event, OrderFilled)
        return _fill(state, event, keep_status=rule is not Computed.FILL)
    if rule is Computed.ACK_AGAIN:
        assert isinstance(event, OrderAccepted)
        prior = state.prior_status
        if prior is OrderStatus.SUBMITTED:
            # The late ack proves the venue has it: a rejected cancel returns to ACCEPTED.
            prior = OrderStatus.ACCEPTED
        return replace(
            state, venue_order_id=_venue_id(state, event.venue_order_id), prior_status=prior
        )
    if rule is Computed.RESTORE_PRIOR:
        return _leave_pending(state, _restored_status(state, event))
    if rule is Computed.REPLACED:
        assert isinstance(event, OrderReplaced)
        return _replaced(state, event)
    if rule is Computed.REJECT_IN_DOUBT:
        if state.prior_status is not OrderStatus.SUBMITTED or state.filled_quantity != 0:
            raise InvalidTransition(
                state.status, event.kind, "the venue already acknowledged or filled the order"
            )
        return _leave_pending(state, OrderStatus.REJECTED)
    raise AssertionError(f"unhandled rule {rule!r}")  # pragma: no cover


def _move(state: OrderState, event: OrderEvent, target: OrderStatus) -> OrderState:
    """A plain status change, with the few fields some events carry."""
    if target in _PENDING_STATUSES:
        new_state = replace(state, status=target, prior_status=state.status)
    else:
        new_state = _leave_pending(state, target)
    if isinstance(event, OrderAccepted):
        new_state = replace(new_state, venue_order_id=_venue_id(state, event.venue_order_id))
    elif isinstance(event, OrderReplaceRequested):
        _check_replace_request(state, event)
        new_state = replace(new_state, pending_quantity=event.quantity, pending_price=event.price)
    return new_state


def _leave_pending(state: OrderState, status: OrderStatus) -> OrderState:
    return replace(
        state, status=status, prior_status=None, pending_quantity=None, pending_price=None
    )


def _fill(state: OrderState, event: OrderFilled, *, keep_status: bool) -> OrderState:
    _require_positive("fill quantity", event.quantity)
    _require_positive("fill price", event.price)
    filled = _EXACT.add(state.filled_quantity, event.quantity)
    if filled > state.quantity:
        raise InvariantViolation(
            f"overfill: trade {event.trade_id!r} fills {event.quantity}, "
            f"filled={state.filled_quantity} + {event.quantity} > quantity={state.quantity}"
        )
    notional = _EXACT.add(state.filled_notional, _EXACT.multiply(event.quantity, event.price))
    filled_state = replace(
        state,
        filled_quantity=filled,
        filled_notional=notional,
        average_price=vwap(notional, filled),
    )
    if filled == state.quantity:
        return _leave_pending(filled_state, OrderStatus.FILLED)
    if keep_status:
        return filled_state
    return replace(filled_state, status=OrderStatus.PARTIALLY_FILLED)


def _restored_status(state: OrderState, event: OrderEvent) -> OrderStatus:
    prior = state.prior_status
    if prior is None:  # pragma: no cover - excluded by the invariants
        raise InvalidTransition(state.status, event.kind, "no prior status recorded")
    # Fills may have arrived while the request was pending: never return to a status
    # that claims nothing was filled.
    if state.filled_quantity > 0:
        return OrderStatus.PARTIALLY_FILLED
    return prior


def _replaced(state: OrderState, event: OrderReplaced) -> OrderState:
    _require_positive("replaced quantity", event.quantity)
    if event.price is not None:
        _require_positive("replaced price", event.price)
    if event.quantity < state.filled_quantity:
        raise InvariantViolation(
            f"replaced quantity={event.quantity} < filled={state.filled_quantity}"
        )
    if event.quantity == state.filled_quantity:
        status = OrderStatus.FILLED  # amended down to what is already filled
    elif state.filled_quantity > 0:
        status = OrderStatus.PARTIALLY_FILLED
    else:
        status = OrderStatus.ACCEPTED
    return replace(
        _leave_pending(state, status),
        quantity=event.quantity,
        price=event.price,
        venue_order_id=event.venue_order_id or state.venue_order_id,
    )


def _check_replace_request(state: OrderState, event: OrderReplaceRequested) -> None:
    if event.quantity is None and event.price is None:
        raise InvariantViolation("replace request changes neither quantity nor price")
    if event.quantity is not None:
        _require_positive("replace quantity", event.quantity)
        if event.quantity < state.filled_quantity:
            raise InvariantViolation(
                f"replace quantity={event.quantity} < filled={state.filled_quantity}"
            )
    if event.price is not None:
        _require_positive("replace price", event.price)


def _venue_id(state: OrderState, venue_order_id: str | None) -> str | None:
    if venue_order_id is None:
        return state.venue_order_id
    if state.venue_order_id is not None and state.venue_order_id != venue_order_id:
        raise InvariantViolation(
            f"venue_order_id changed: {state.venue_order_id!r} -> {venue_order_id!r}"
        )
    return venue_order_id


def _require_positive(name: str, value: object) -> None:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvariantViolation(f"{name} must be a finite Decimal, got {value!r}")
    if value <= 0:
        raise InvariantViolation(f"{name} must be > 0, got {value}")


def _check_invariants(
    state: OrderState, *, previous: OrderState | None = None, late: bool = False
) -> None:
    """Raise InvariantViolation unless `state` (reached from `previous`) is consistent."""
    status, quantity, filled = state.status, state.quantity, state.filled_quantity
    if not quantity > 0:
        raise InvariantViolation(f"quantity={quantity} must be > 0")
    if not 0 <= filled <= quantity:
        raise InvariantViolation(f"filled={filled} outside [0, quantity={quantity}]")
    if (state.average_price is None) != (filled == 0):
        raise InvariantViolation(f"average_price={state.average_price} with filled={filled}")
    fills_changed = previous is None or (
        (filled, state.filled_notional) != (previous.filled_quantity, previous.filled_notional)
    )
    # Only checked where apply computed it: a state loaded from storage may carry an
    # average rounded to the column's scale, and a later cancel must not trip on that.
    if fills_changed and state.average_price != vwap(state.filled_notional, filled):
        raise InvariantViolation(
            f"average_price={state.average_price} != VWAP of fills "
            f"(notional={state.filled_notional}, filled={filled})"
        )
    if (status is OrderStatus.FILLED) != (filled == quantity):
        raise InvariantViolation(f"status={status} with filled={filled} of quantity={quantity}")
    if status in _UNFILLED_STATUSES and filled != 0:
        raise InvariantViolation(f"status={status} with filled={filled}")
    if status is OrderStatus.PARTIALLY_FILLED and filled == 0:
        raise InvariantViolation("status=PARTIALLY_FILLED with nothing filled")
    if status in _PENDING_STATUSES:
        if state.prior_status not in _RESTORABLE_STATUSES:
            raise InvariantViolation(f"status={status} with prior_status={state.prior_status}")
    elif state.prior_status is not None:
        raise InvariantViolation(f"status={status} with prior_status={state.prior_status}")
    if status is not OrderStatus.PENDING_REPLACE and (
        state.pending_quantity is not None or state.pending_price is not None
    ):
        raise InvariantViolation(f"status={status} with a pending amend")
    if previous is None:
        return
    if filled < previous.filled_quantity:
        raise InvariantViolation(f"filled decreased: {previous.filled_quantity} -> {filled}")
    if previous.is_terminal and state != previous:
        # Terminal states are final; the only change allowed is a late fill correction.
        if not (late and status in (previous.status, OrderStatus.FILLED)):
            raise InvariantViolation(f"terminal {previous.status} changed to {status}")
