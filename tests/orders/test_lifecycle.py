"""Example tests for the order lifecycle state machine (orders/domain/lifecycle.py)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from orders.domain.lifecycle import (
    EVENT_CLASSES,
    TERMINAL_STATUSES,
    TRANSITIONS,
    WORKING_STATUSES,
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
S = OrderStatus


def run(state: OrderState, *events: OrderEvent) -> OrderState:
    for event in events:
        state = apply(state, event).state
    return state


def fill(quantity: str, price: str = "100", trade_id: str = "t") -> OrderFilled:
    return OrderFilled(trade_id=trade_id, quantity=D(quantity), price=D(price))


def submitted(quantity: str = "10", price: str | None = "100") -> OrderState:
    return run(
        new_order(quantity=D(quantity), price=None if price is None else D(price)), OrderSubmitted()
    )


def accepted(quantity: str = "10", price: str | None = "100") -> OrderState:
    return run(submitted(quantity, price), OrderAccepted(venue_order_id="V1"))


# --- statuses and new orders ---------------------------------------------------------


def test_status_values_equal_names() -> None:
    assert all(status.value == status.name for status in OrderStatus)
    assert len(OrderStatus) == 11


def test_terminal_and_working_statuses_are_disjoint_and_as_documented() -> None:
    assert TERMINAL_STATUSES == {S.DENIED, S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED}
    assert WORKING_STATUSES == {
        S.SUBMITTED,
        S.ACCEPTED,
        S.PARTIALLY_FILLED,
        S.PENDING_CANCEL,
        S.PENDING_REPLACE,
    }
    assert not TERMINAL_STATUSES & WORKING_STATUSES


def test_new_order_is_pending_new_with_full_leaves() -> None:
    state = new_order(quantity=D("10"), price=D("101.5"))

    assert state.status is S.PENDING_NEW
    assert state.filled_quantity == 0
    assert state.leaves_quantity == D("10")
    assert state.average_price is None
    assert not state.is_terminal
    assert not state.is_working


@pytest.mark.parametrize(
    ("quantity", "price"),
    [(D(0), D(1)), (D(-1), D(1)), (D("NaN"), D(1)), (D(1), D(0)), (D(1), D("-2"))],
)
def test_new_order_with_non_positive_values_raises(quantity: Decimal, price: Decimal) -> None:
    with pytest.raises(InvariantViolation):
        new_order(quantity=quantity, price=price)


def test_new_order_with_float_quantity_raises() -> None:
    with pytest.raises(InvariantViolation, match="Decimal"):
        new_order(quantity=1.5, price=None)  # type: ignore[arg-type]


def test_event_kind_names_the_class() -> None:
    assert all(cls.__name__ == kind for kind, cls in EVENT_CLASSES.items())
    assert OrderAccepted().kind == "OrderAccepted"


# --- before sending ------------------------------------------------------------------


def test_pending_new_denied_by_risk_then_denied_and_terminal() -> None:
    state = new_order(quantity=D("10"), price=D("100"))

    result = apply(state, OrderDenied(reasons=("MAX_ORDER_NOTIONAL: notional=1000 > max=500",)))

    assert result.state.status is S.DENIED
    assert result.state.is_terminal
    assert result.state.leaves_quantity == 0


def test_pending_new_rejected_before_sending_when_breaker_open() -> None:
    state = new_order(quantity=D("10"), price=D("100"))

    result = apply(state, OrderRejected(reason="breaker open"))

    assert result.state.status is S.REJECTED


def test_pending_new_canceled_before_sending_then_canceled() -> None:
    state = new_order(quantity=D("10"), price=D("100"))

    result = apply(state, OrderCanceled(reason="user"))

    assert result.state.status is S.CANCELED


def test_pending_new_fill_raises_invalid_transition() -> None:
    state = new_order(quantity=D("10"), price=D("100"))

    with pytest.raises(InvalidTransition, match=r"^PENDING_NEW -> .* \(OrderFilled\)$"):
        apply(state, fill("1"))


# --- submitted -----------------------------------------------------------------------


def test_submit_then_accept_records_venue_order_id() -> None:
    state = submitted()

    result = apply(state, OrderAccepted(venue_order_id="V1"))

    assert result.state.status is S.ACCEPTED
    assert result.state.venue_order_id == "V1"
    assert result.state.is_working
    assert not result.noop


def test_submitted_rejected_by_venue_then_rejected() -> None:
    result = apply(submitted(), OrderRejected(reason="insufficient margin"))

    assert result.state.status is S.REJECTED
    assert result.state.is_terminal


def test_market_order_fill_before_ack_then_filled_and_late_ack_ignored() -> None:
    state = submitted(price=None)

    filled = apply(state, fill("10", "101"))
    late_ack = apply(filled.state, OrderAccepted(venue_order_id="V1"))

    assert filled.state.status is S.FILLED
    assert filled.state.average_price == D("101")
    assert late_ack.noop
    assert late_ack.state == filled.state


def test_partial_fill_before_ack_then_ack_keeps_partially_filled() -> None:
    state = run(submitted(), fill("4"))

    result = apply(state, OrderAccepted(venue_order_id="V1"))

    assert result.state.status is S.PARTIALLY_FILLED
    assert result.state.venue_order_id == "V1"
    assert result.state.filled_quantity == D("4")


def test_ioc_with_nothing_filled_then_canceled_without_ack() -> None:
    result = apply(submitted(), OrderCanceled(reason="IOC: nothing filled"))

    assert result.state.status is S.CANCELED
    assert result.state.leaves_quantity == 0


def test_submitted_expired_without_ack() -> None:
    result = apply(submitted(), OrderExpired(reason="FOK"))

    assert result.state.status is S.EXPIRED


def test_cancel_requested_while_submitted_then_late_ack_then_cancel_rejected_back_to_accepted() -> (
    None
):
    state = run(submitted(), OrderCancelRequested())

    acked = apply(state, OrderAccepted(venue_order_id="V9"))
    rejected = apply(acked.state, OrderCancelRejected(reason="unknown order"))

    assert state.status is S.PENDING_CANCEL
    assert state.prior_status is S.SUBMITTED
    assert acked.state.status is S.PENDING_CANCEL
    assert acked.state.venue_order_id == "V9"
    assert not acked.noop  # the venue order id was recorded
    assert rejected.state.status is S.ACCEPTED
    assert rejected.state.prior_status is None


def test_cancel_requested_while_submitted_then_cancel_rejected_back_to_submitted() -> None:
    state = run(submitted(), OrderCancelRequested())

    result = apply(state, OrderCancelRejected(reason="unknown order"))

    assert result.state.status is S.SUBMITTED


def test_cancel_requested_while_submitted_then_venue_rejects_order_then_rejected() -> None:
    state = run(submitted(), OrderCancelRequested())

    result = apply(state, OrderRejected(reason="bad symbol"))

    assert result.state.status is S.REJECTED
    assert result.state.prior_status is None


def test_venue_reject_while_cancel_pending_after_ack_raises() -> None:
    state = run(accepted(), OrderCancelRequested())

    with pytest.raises(InvalidTransition, match="already acknowledged"):
        apply(state, OrderRejected(reason="?"))


# --- working -------------------------------------------------------------------------


def test_duplicate_ack_while_accepted_is_noop() -> None:
    state = accepted()

    result = apply(state, OrderAccepted(venue_order_id="V1"))

    assert result.noop
    assert result.state is state


def test_ack_with_different_venue_order_id_raises() -> None:
    with pytest.raises(InvariantViolation, match="venue_order_id changed"):
        apply(accepted(), OrderAccepted(venue_order_id="OTHER"))


def test_partial_fill_then_partially_filled_with_leaves() -> None:
    result = apply(accepted(), fill("3", "100"))

    assert result.state.status is S.PARTIALLY_FILLED
    assert result.state.filled_quantity == D("3")
    assert result.state.leaves_quantity == D("7")
    assert result.state.average_price == D("100")


def test_fills_then_average_price_is_vwap() -> None:
    state = accepted(quantity="10")

    result = run(state, fill("1", "100", "a"), fill("2", "103", "b"), fill("7", "101.5", "c"))

    assert result.status is S.FILLED
    assert result.filled_notional == D("1016.5")
    assert result.average_price == D("101.65")
    assert result.leaves_quantity == 0


def test_vwap_with_repeating_decimal_is_rounded_to_28_digits() -> None:
    state = accepted(quantity="3")

    result = run(state, fill("1", "1"), fill("2", "2"))  # 5 / 3

    assert result.average_price == D("1.666666666666666666666666667")
    assert result.filled_notional == D("5")


def test_overfill_raises_invariant_violation() -> None:
    state = run(accepted(quantity="10"), fill("6"))

    with pytest.raises(InvariantViolation, match="overfill"):
        apply(state, fill("5"))


def test_fill_after_filled_raises_invariant_violation() -> None:
    state = run(accepted(quantity="10"), fill("10"))

    with pytest.raises(InvariantViolation, match="overfill"):
        apply(state, fill("1"))


@pytest.mark.parametrize(
    ("quantity", "price"), [("0", "100"), ("-1", "100"), ("1", "0"), ("1", "-5"), ("NaN", "1")]
)
def test_fill_with_non_positive_values_raises(quantity: str, price: str) -> None:
    with pytest.raises(InvariantViolation, match="must be"):
        apply(accepted(), fill(quantity, price))


def test_ioc_remainder_canceled_after_partial_fill_then_canceled_keeps_fill() -> None:
    state = run(submitted(), fill("4", "100"))

    result = apply(state, OrderCanceled(reason="IOC remainder"))

    assert result.state.status is S.CANCELED
    assert result.state.filled_quantity == D("4")
    assert result.state.leaves_quantity == 0


def test_unsolicited_venue_cancel_while_accepted_then_canceled() -> None:
    result = apply(accepted(), OrderCanceled(reason="venue maintenance"))

    assert result.state.status is S.CANCELED


def test_day_order_expired_while_partially_filled_then_expired() -> None:
    state = run(accepted(), fill("2"))

    result = apply(state, OrderExpired(reason="end of day"))

    assert result.state.status is S.EXPIRED
    assert result.state.filled_quantity == D("2")


# --- cancel races --------------------------------------------------------------------


def test_cancel_requested_then_confirmed_then_canceled() -> None:
    state = run(accepted(), OrderCancelRequested())

    result = apply(state, OrderCanceled())

    assert state.status is S.PENDING_CANCEL
    assert state.prior_status is S.ACCEPTED
    assert state.leaves_quantity == D("10")
    assert result.state.status is S.CANCELED
    assert result.state.prior_status is None


def test_fill_while_cancel_pending_then_cancel_confirmed_keeps_fill() -> None:
    state = run(accepted(), OrderCancelRequested())

    during = apply(state, fill("3", "99"))
    result = apply(during.state, OrderCanceled())

    assert during.state.status is S.PENDING_CANCEL
    assert during.state.filled_quantity == D("3")
    assert during.state.leaves_quantity == D("7")
    assert result.state.status is S.CANCELED
    assert result.state.filled_quantity == D("3")
    assert result.state.average_price == D("99")


def test_fill_completing_order_while_cancel_pending_then_filled_and_cancel_reject_ignored() -> None:
    state = run(accepted(), OrderCancelRequested())

    filled = apply(state, fill("10"))
    too_late = apply(filled.state, OrderCancelRejected(reason="too late to cancel"))

    assert filled.state.status is S.FILLED
    assert filled.state.prior_status is None
    assert too_late.noop
    assert too_late.state.status is S.FILLED


def test_cancel_rejected_then_back_to_prior_status() -> None:
    state = run(accepted(), fill("2"), OrderCancelRequested())

    result = apply(state, OrderCancelRejected(reason="unknown order"))

    assert result.state.status is S.PARTIALLY_FILLED
    assert result.state.prior_status is None


def test_fill_while_cancel_pending_then_cancel_rejected_then_partially_filled_not_accepted() -> (
    None
):
    state = run(accepted(), OrderCancelRequested(), fill("4"))

    result = apply(state, OrderCancelRejected(reason="too late"))

    assert result.state.status is S.PARTIALLY_FILLED
    assert result.state.filled_quantity == D("4")


def test_repeated_cancel_request_while_cancel_pending_is_noop() -> None:
    state = run(accepted(), OrderCancelRequested())

    result = apply(state, OrderCancelRequested())

    assert result.noop
    assert result.state.prior_status is S.ACCEPTED


def test_duplicate_cancel_confirmation_is_noop() -> None:
    state = run(accepted(), OrderCancelRequested(), OrderCanceled())

    result = apply(state, OrderCanceled())

    assert result.noop
    assert result.state.status is S.CANCELED


def test_expired_while_cancel_pending_then_expired() -> None:
    state = run(accepted(), OrderCancelRequested())

    result = apply(state, OrderExpired())

    assert result.state.status is S.EXPIRED
    assert result.state.prior_status is None


def test_late_fill_after_cancel_then_applied_and_flagged_late() -> None:
    state = run(accepted(), fill("2", "100", "a"), OrderCancelRequested(), OrderCanceled())

    result = apply(state, fill("3", "110", "b"))

    assert result.late
    assert result.state.status is S.CANCELED
    assert result.state.filled_quantity == D("5")
    assert result.state.average_price == D("106")
    assert result.state.leaves_quantity == 0


def test_late_fill_completing_canceled_order_then_filled_and_flagged_late() -> None:
    state = run(accepted(), fill("6"), OrderCanceled())

    result = apply(state, fill("4"))

    assert result.late
    assert result.state.status is S.FILLED


def test_late_fill_after_expiry_then_flagged_late() -> None:
    state = run(accepted(), OrderExpired())

    result = apply(state, fill("1"))

    assert result.late
    assert result.state.status is S.EXPIRED
    assert result.state.filled_quantity == D("1")


def test_late_fill_overfilling_canceled_order_raises() -> None:
    state = run(accepted(), fill("6"), OrderCanceled())

    with pytest.raises(InvariantViolation, match="overfill"):
        apply(state, fill("5"))


def test_normal_fill_is_not_flagged_late() -> None:
    assert not apply(accepted(), fill("1")).late


@pytest.mark.parametrize(
    "state",
    [
        run(new_order(quantity=D("1"), price=None), OrderDenied(reasons=("X",))),
        run(submitted(), OrderRejected(reason="x")),
    ],
    ids=["denied", "rejected"],
)
def test_fill_after_denied_or_rejected_raises_invalid_transition(state: OrderState) -> None:
    with pytest.raises(InvalidTransition, match=f"^{state.status} -> "):
        apply(state, fill("1"))


# --- replace races -------------------------------------------------------------------


def test_replace_requested_then_pending_replace_with_requested_values() -> None:
    result = apply(accepted(), OrderReplaceRequested(quantity=D("12"), price=D("99")))

    assert result.state.status is S.PENDING_REPLACE
    assert result.state.prior_status is S.ACCEPTED
    assert result.state.pending_quantity == D("12")
    assert result.state.pending_price == D("99")
    assert result.state.quantity == D("10")  # unchanged until the venue confirms


def test_replace_confirmed_then_accepted_with_new_values() -> None:
    state = run(accepted(), OrderReplaceRequested(quantity=D("12"), price=D("99")))

    result = apply(state, OrderReplaced(quantity=D("12"), price=D("99"), venue_order_id="V1"))

    assert result.state.status is S.ACCEPTED
    assert result.state.quantity == D("12")
    assert result.state.price == D("99")
    assert result.state.pending_quantity is None
    assert result.state.pending_price is None
    assert result.state.prior_status is None


def test_fill_while_replace_pending_then_replaced_then_partially_filled() -> None:
    state = run(accepted(), OrderReplaceRequested(quantity=D("8"), price=None))

    during = apply(state, fill("3"))
    result = apply(during.state, OrderReplaced(quantity=D("8"), price=D("100")))

    assert during.state.status is S.PENDING_REPLACE
    assert result.state.status is S.PARTIALLY_FILLED
    assert result.state.leaves_quantity == D("5")


def test_replace_down_to_filled_quantity_then_filled() -> None:
    state = run(accepted(), fill("4"), OrderReplaceRequested(quantity=D("4"), price=None))

    result = apply(state, OrderReplaced(quantity=D("4"), price=D("100")))

    assert result.state.status is S.FILLED
    assert result.state.leaves_quantity == 0


def test_fill_racing_replace_then_replaced_below_filled_raises() -> None:
    state = run(accepted(), OrderReplaceRequested(quantity=D("5"), price=None), fill("7"))

    with pytest.raises(InvariantViolation, match="replaced quantity=5 < filled=7"):
        apply(state, OrderReplaced(quantity=D("5"), price=D("100")))


def test_replace_rejected_then_back_to_prior_status() -> None:
    state = run(accepted(), OrderReplaceRequested(quantity=None, price=D("98")))

    result = apply(state, OrderReplaceRejected(reason="price out of band"))

    assert result.state.status is S.ACCEPTED
    assert result.state.price == D("100")
    assert result.state.pending_price is None


def test_fill_while_replace_pending_then_replace_rejected_then_partially_filled() -> None:
    state = run(accepted(), OrderReplaceRequested(quantity=D("20"), price=None), fill("1"))

    result = apply(state, OrderReplaceRejected(reason="x"))

    assert result.state.status is S.PARTIALLY_FILLED
    assert result.state.quantity == D("10")


def test_fill_completing_order_while_replace_pending_then_filled() -> None:
    state = run(accepted(), OrderReplaceRequested(quantity=D("20"), price=None))

    result = apply(state, fill("10"))

    assert result.state.status is S.FILLED
    assert result.state.pending_quantity is None


def test_canceled_while_replace_pending_then_canceled() -> None:
    state = run(accepted(), OrderReplaceRequested(quantity=D("20"), price=None))

    result = apply(state, OrderCanceled(reason="venue canceled instead of amending"))

    assert result.state.status is S.CANCELED
    assert result.state.pending_quantity is None


def test_replace_request_changing_nothing_raises() -> None:
    with pytest.raises(InvariantViolation, match="changes neither"):
        apply(accepted(), OrderReplaceRequested(quantity=None, price=None))


def test_replace_request_below_filled_raises() -> None:
    state = run(accepted(), fill("5"))

    with pytest.raises(InvariantViolation, match="replace quantity=4 < filled=5"):
        apply(state, OrderReplaceRequested(quantity=D("4"), price=None))


def test_replace_while_submitted_raises_invalid_transition() -> None:
    with pytest.raises(InvalidTransition, match=r"^SUBMITTED -> PENDING_REPLACE"):
        apply(submitted(), OrderReplaceRequested(quantity=D("1"), price=None))


# --- illegal transitions -------------------------------------------------------------


def test_submit_after_accepted_raises_readable_message() -> None:
    with pytest.raises(InvalidTransition) as excinfo:
        apply(accepted(), OrderSubmitted())

    assert str(excinfo.value) == "ACCEPTED -> SUBMITTED (OrderSubmitted)"
    assert excinfo.value.from_status is S.ACCEPTED
    assert excinfo.value.event_kind == "OrderSubmitted"


def test_cancel_request_after_canceled_raises() -> None:
    state = run(accepted(), OrderCanceled())

    with pytest.raises(InvalidTransition, match=r"^CANCELED -> PENDING_CANCEL"):
        apply(state, OrderCancelRequested())


def _example_events() -> list[OrderEvent]:
    return [
        OrderDenied(reasons=("X",)),
        OrderSubmitted(),
        OrderAccepted(),
        OrderRejected(reason="x"),
        fill("1"),
        OrderCancelRequested(),
        OrderCanceled(),
        OrderCancelRejected(reason="x"),
        OrderReplaceRequested(quantity=D("5"), price=None),
        OrderReplaced(quantity=D("5"), price=None),
        OrderReplaceRejected(reason="x"),
        OrderExpired(),
    ]


def _example_states() -> dict[OrderStatus, OrderState]:
    base = new_order(quantity=D("10"), price=D("100"))
    return {
        S.PENDING_NEW: base,
        S.DENIED: run(base, OrderDenied(reasons=("X",))),
        S.SUBMITTED: submitted(),
        S.ACCEPTED: accepted(),
        S.PARTIALLY_FILLED: run(accepted(), fill("2")),
        S.FILLED: run(accepted(), fill("10")),
        S.PENDING_CANCEL: run(accepted(), OrderCancelRequested()),
        S.CANCELED: run(accepted(), OrderCanceled()),
        S.PENDING_REPLACE: run(accepted(), OrderReplaceRequested(quantity=D("8"), price=None)),
        S.REJECTED: run(submitted(), OrderRejected(reason="x")),
        S.EXPIRED: run(accepted(), OrderExpired()),
    }


def test_every_event_kind_has_a_class() -> None:
    assert {event.kind for event in _example_events()} == set(EVENT_CLASSES)
    assert {kind for _, kind in TRANSITIONS} <= set(EVENT_CLASSES)


@pytest.mark.parametrize("status", list(OrderStatus))
def test_events_missing_from_table_raise_invalid_transition(status: OrderStatus) -> None:
    state = _example_states()[status]
    assert state.status is status

    for event in _example_events():
        if (status, event.kind) in TRANSITIONS:
            continue
        with pytest.raises(InvalidTransition, match=rf"^{status} -> .* \({event.kind}\)"):
            apply(state, event)


def test_terminal_statuses_only_allow_duplicates_and_late_fills() -> None:
    for (status, kind), _target in TRANSITIONS.items():
        if status not in TERMINAL_STATUSES:
            continue
        state = _example_states()[status]
        event = next(e for e in _example_events() if e.kind == kind)
        try:
            result = apply(state, event)
        except InvariantViolation:
            assert status is S.FILLED and kind == "OrderFilled"
            continue
        assert result.noop or result.late, (status, kind)


# --- states rebuilt from storage -----------------------------------------------------


def test_state_loaded_with_rounded_average_then_non_fill_events_still_apply() -> None:
    exact = run(accepted(quantity="10"), fill("1", "1", "a"), fill("2", "2", "b"))  # 5 / 3
    assert exact.average_price is not None
    stored = replace(exact, average_price=exact.average_price.quantize(D("1e-12")))

    canceled = apply(stored, OrderCancelRequested()).state
    refilled = apply(stored, fill("1", "3", "c")).state

    assert canceled.status is S.PENDING_CANCEL
    assert canceled.average_price == D("1.666666666667")  # carried over as stored
    assert refilled.average_price == D("2")  # recomputed from the exact notional (8 / 4)


def test_state_with_average_but_nothing_filled_raises() -> None:
    broken = replace(accepted(), average_price=D("100"))

    with pytest.raises(InvariantViolation, match="average_price=100 with filled=0"):
        apply(broken, OrderCancelRequested())
