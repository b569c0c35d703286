"""Property-based tests: random event sequences never break the lifecycle invariants."""

from __future__ import annotations

import copy
from decimal import Context, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.domain.lifecycle import (
    TERMINAL_STATUSES,
    TRANSITIONS,
    InvalidTransition,
    InvariantViolation,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderCancelRequested,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderReplaceRejected,
    OrderReplaceRequested,
    OrderState,
    OrderStatus,
    OrderSubmitted,
    apply,
    new_order,
)

D = Decimal
CENT = D("0.01")
# The documented average: exact notional / filled, 28 significant digits, half even.
AVERAGE_CONTEXT = Context(prec=28)

PENDING = frozenset({OrderStatus.PENDING_CANCEL, OrderStatus.PENDING_REPLACE})
quantities = st.integers(min_value=1, max_value=100_000).map(lambda n: D(n) * CENT)
prices = st.integers(min_value=1, max_value=10_000_000).map(lambda n: D(n).scaleb(-4))
optional_prices = st.none() | prices


def draw_quantity_around(data: st.DataObject, target: Decimal) -> Decimal:
    """Mostly a slice of `target` (a partial fill); sometimes exactly `target` (a complete
    fill / amend to filled); sometimes anything near it, including zero, negative and
    overflowing values that apply() must refuse."""
    cents = int(target / CENT)
    shape = data.draw(st.integers(min_value=0, max_value=9), label="fill shape")
    if shape == 0 or cents < 1:
        return target
    if shape == 1:
        return D(data.draw(st.integers(min_value=-100, max_value=cents + 200))) * CENT
    return D(data.draw(st.integers(min_value=1, max_value=max(1, cents // 3)))) * CENT


WEIGHTED_KINDS = [
    *["fill"] * 4,
    *["submit"] * 6,
    *["ack"] * 2,
    *["cancel_request"] * 2,
    *["replace_request"] * 2,
    *["replaced"] * 2,
    "deny",
    "reject",
    "canceled",
    "cancel_rejected",
    "replace_rejected",
    "expired",
    "duplicate",
]
EVENT_KIND = {
    "fill": OrderFilled.kind,
    "submit": OrderSubmitted.kind,
    "ack": OrderAccepted.kind,
    "deny": OrderDenied.kind,
    "reject": OrderRejected.kind,
    "cancel_request": OrderCancelRequested.kind,
    "canceled": OrderCanceled.kind,
    "cancel_rejected": OrderCancelRejected.kind,
    "replace_request": OrderReplaceRequested.kind,
    "replaced": OrderReplaced.kind,
    "replace_rejected": OrderReplaceRejected.kind,
    "expired": OrderExpired.kind,
    "duplicate": OrderFilled.kind,  # a repeat of an earlier event (often a fill)
}


def draw_event(data: st.DataObject, state: OrderState, history: list[OrderEvent]) -> OrderEvent:
    # Mostly events the table allows in the current status (so sequences get deep),
    # sometimes anything at all; repeats in WEIGHTED_KINDS bias towards fills.
    allowed = [k for k in WEIGHTED_KINDS if (state.status, EVENT_KIND[k]) in TRANSITIONS]
    anything = data.draw(st.integers(min_value=0, max_value=4), label="anything") == 0
    kind = data.draw(
        st.sampled_from(WEIGHTED_KINDS if anything or not allowed else allowed), label="kind"
    )
    remaining = state.quantity - state.filled_quantity
    if kind == "duplicate" and history:
        return data.draw(st.sampled_from(history), label="duplicate")
    if kind == "fill" or kind == "duplicate":
        return OrderFilled(
            trade_id=f"T{len(history)}",
            quantity=draw_quantity_around(data, remaining),
            price=data.draw(prices | st.sampled_from([D(0), D(-1)]), label="fill price"),
        )
    if kind == "submit":
        return OrderSubmitted()
    if kind == "ack":
        return OrderAccepted(venue_order_id=data.draw(st.sampled_from([None, "V1", "V2"])))
    if kind == "deny":
        return OrderDenied(reasons=("MAX_ORDER_NOTIONAL",))
    if kind == "reject":
        return OrderRejected(reason="venue")
    if kind == "cancel_request":
        return OrderCancelRequested()
    if kind == "canceled":
        return OrderCanceled()
    if kind == "cancel_rejected":
        return OrderCancelRejected(reason="too late")
    if kind == "replace_request":
        quantity = data.draw(st.none() | st.just(state.quantity + 1) | quantities)
        return OrderReplaceRequested(quantity=quantity, price=data.draw(optional_prices))
    if kind == "replaced":
        target = state.pending_quantity or state.quantity
        quantity = data.draw(
            st.sampled_from([target, state.filled_quantity]) | st.just(D(0)) | quantities
        )
        return OrderReplaced(quantity=quantity, price=data.draw(optional_prices))
    if kind == "replace_rejected":
        return OrderReplaceRejected(reason="price band")
    return OrderExpired()


def expected_average(fills: list[OrderFilled]) -> Decimal | None:
    filled = sum((fill.quantity for fill in fills), D(0))
    if filled == 0:
        return None
    notional = sum((fill.quantity * fill.price for fill in fills), D(0))
    return AVERAGE_CONTEXT.divide(notional, filled)


def expected_refusal(state: OrderState, event: OrderEvent) -> str | None:
    """Why apply() must refuse `event` on `state` (an oracle written independently of
    the implementation), or None when it must accept it."""
    filled = state.filled_quantity
    if isinstance(event, OrderFilled):
        if event.quantity <= 0 or event.price <= 0:
            return "non-positive fill"
        if filled + event.quantity > state.quantity:
            return "overfill"
    if isinstance(event, OrderReplaceRequested):
        if event.quantity is None and event.price is None:
            return "empty amend"
        if event.quantity is not None and (event.quantity <= 0 or event.quantity < filled):
            return "amend quantity below filled"
        if event.price is not None and event.price <= 0:
            return "non-positive amend price"
    if isinstance(event, OrderReplaced) and state.status is OrderStatus.PENDING_REPLACE:
        if event.quantity <= 0 or event.quantity < filled:
            return "replaced quantity below filled"
        if event.price is not None and event.price <= 0:
            return "non-positive replaced price"
    if isinstance(event, OrderAccepted) and not state.is_terminal:
        ids = {state.venue_order_id, event.venue_order_id} - {None}
        if len(ids) > 1:
            return "conflicting venue order id"
    if isinstance(event, OrderRejected) and state.status is OrderStatus.PENDING_CANCEL:
        if state.prior_status is not OrderStatus.SUBMITTED or filled > 0:
            return "venue already had the order"
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(quantity=quantities, price=optional_prices, data=st.data())
def test_random_event_sequences_keep_invariants(
    quantity: Decimal, price: Decimal | None, data: st.DataObject
) -> None:
    state = new_order(quantity=quantity, price=price)
    history: list[OrderEvent] = []
    applied_fills: list[OrderFilled] = []
    steps = data.draw(st.integers(min_value=1, max_value=40), label="steps")

    for _ in range(steps):
        event = draw_event(data, state, history)
        history.append(event)
        before = copy.deepcopy(state)
        if (state.status, event.kind) not in TRANSITIONS:
            # Anything missing from the table is refused, as InvalidTransition.
            with pytest.raises(InvalidTransition):
                apply(state, event)
            assert state == before
            continue
        reason = expected_refusal(state, event)
        try:
            result = apply(state, event)
        except (InvalidTransition, InvariantViolation) as error:
            # Refused only for a reason the oracle knows, and apply is pure: a refused
            # event leaves the state exactly as it was.
            assert reason is not None, f"{event} refused on {state}: {error}"
            assert state == before
            continue
        assert reason is None, f"{event} accepted on {state} despite {reason}"
        new = result.state

        if isinstance(event, OrderFilled):
            applied_fills.append(event)
        filled_sum = sum((fill.quantity for fill in applied_fills), D(0))
        assert new.filled_quantity == filled_sum
        assert 0 <= new.filled_quantity <= new.quantity
        assert new.quantity > 0
        assert new.filled_quantity >= state.filled_quantity
        assert new.average_price == expected_average(applied_fills)
        if applied_fills:
            assert new.average_price is not None
            assert min(f.price for f in applied_fills) <= new.average_price
            assert new.average_price <= max(f.price for f in applied_fills)
        if new.is_terminal:
            assert new.leaves_quantity == 0
        else:
            assert new.leaves_quantity == new.quantity - new.filled_quantity
        assert (new.status is OrderStatus.FILLED) == (new.filled_quantity == new.quantity)

        late_fill = isinstance(event, OrderFilled) and state.status in {
            OrderStatus.CANCELED,
            OrderStatus.EXPIRED,
        }
        assert result.late == late_fill
        if result.noop:
            assert new == state
        if state.is_terminal and new != state:
            # Terminal states only change through a flagged late fill correction.
            assert result.late
            assert new.status in {state.status, OrderStatus.FILLED}
        if state.is_terminal:
            assert new.is_terminal

        if state.status in PENDING and new.status not in PENDING | {OrderStatus.FILLED}:
            assert new.prior_status is None
        if (
            isinstance(event, OrderCancelRejected | OrderReplaceRejected)
            and state.status in PENDING
        ):
            # Back to the prior status, but never to one claiming nothing was filled.
            restored = OrderStatus.PARTIALLY_FILLED if state.filled_quantity else state.prior_status
            assert new.status is restored
        if isinstance(event, OrderFilled) and state.status in PENDING:
            # Fill racing a cancel/replace: still pending unless it completed the order.
            assert new.status in {state.status, OrderStatus.FILLED}

        # Determinism: the same event on the same state gives the same result.
        assert apply(state, event) == result
        state = new


@settings(max_examples=200, deadline=None)
@given(
    quantity=quantities,
    fills=st.lists(st.tuples(quantities, prices), min_size=1, max_size=10),
    cancel_after=st.integers(min_value=0, max_value=10),
)
def test_fills_racing_a_cancel_are_all_kept(
    quantity: Decimal, fills: list[tuple[Decimal, Decimal]], cancel_after: int
) -> None:
    state = apply(
        apply(new_order(quantity=quantity, price=None), OrderSubmitted()).state,
        OrderCancelRequested(),
    ).state
    applied: list[OrderFilled] = []

    for index, (size, price) in enumerate(fills):
        if index == cancel_after and state.status is OrderStatus.PENDING_CANCEL:
            state = apply(state, OrderCanceled()).state
        fill = OrderFilled(trade_id=str(index), quantity=size, price=price)
        try:
            result = apply(state, fill)
        except InvariantViolation:
            assert state.filled_quantity + size > state.quantity
            continue
        applied.append(fill)
        assert result.late == (state.status is OrderStatus.CANCELED)
        state = result.state

    assert state.filled_quantity == sum((f.quantity for f in applied), D(0))
    assert state.average_price == expected_average(applied)
    assert state.status in {OrderStatus.PENDING_CANCEL, OrderStatus.CANCELED, OrderStatus.FILLED}
    assert state.status in TERMINAL_STATUSES or state.leaves_quantity > 0
