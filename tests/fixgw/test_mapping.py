"""FIX 4.4 <-> OMS mapping (fixgw/mapping.py): pure, no database, no QuickFIX."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from fixgw import mapping as m
from fixgw.mapping import FixInputError, OrderFacts
from orders.domain.lifecycle import TRANSITIONS, OrderStatus


def order_fields(**over: str) -> dict[int, str]:
    fields = {11: "c-1", 1: "DEMO", 55: "BTC/USDT", 54: "1", 38: "0.5", 40: "2", 44: "100.5"}
    fields.update({int(k[1:]): v for k, v in over.items()})
    return {k: v for k, v in fields.items() if v != ""}


def facts(**over) -> OrderFacts:
    base = dict(
        order_id=7, seq=3, kind="OrderAccepted", status="ACCEPTED", client_order_id="c-1",
        account="DEMO", symbol="BTC/USDT", side="buy", type="limit", quantity=D("0.5"),
        price=D("100.5"), time_in_force="GTC", filled=D(0), average_price=None,
    )  # fmt: skip
    base.update(over)
    return OrderFacts(**base)


# --- inbound ---------------------------------------------------------------------------


def test_new_order_single_then_submit_order_for_the_user_from_fix():
    command = m.parse_new_order(order_fields(t59="3", t100="sim-a"), user_id=5)

    assert (command.account, command.symbol, command.side, command.type) == (
        "DEMO", "BTC/USDT", "buy", "limit",
    )  # fmt: skip
    assert command.quantity == D("0.5") and command.price == D("100.5")
    assert command.time_in_force == "IOC" and command.venue == "sim-a"
    assert command.client_order_id == "c-1" and command.user_id == 5 and command.source == "fix"


def test_new_order_without_ex_destination_then_no_venue_for_the_router():
    command = m.parse_new_order(order_fields(), user_id=1)
    assert command.venue is None and command.time_in_force is None


@pytest.mark.parametrize(
    ("over", "text"),
    [
        (dict(t40="1"), "Price (44) is not allowed on a market order"),
        (dict(t44=""), "Price (44) is required on a limit order"),
        (dict(t1=""), "Account (1) is required"),
        (dict(t54="5"), "Side (54) '5' is not supported: use 1 (buy), 2 (sell)"),
        (dict(t40="3"), "OrdType (40) '3' is not supported"),
        (dict(t59="0"), "TimeInForce (59) '0' is not supported"),
        (dict(t38="0"), "OrderQty (38) must be positive"),
        (dict(t38="abc"), "OrderQty (38) 'abc' is not a number"),
        (dict(t11="x" * 33), "ClOrdID (11) is longer than 32 characters"),
    ],
)
def test_new_order_with_bad_field_then_error_naming_the_tag(over, text):
    with pytest.raises(FixInputError) as error:
        m.parse_new_order(order_fields(**over), user_id=1)
    assert text in error.value.text


def test_replace_with_new_quantity_and_price_then_only_what_changes():
    order = dict(side="buy", symbol="BTC/USDT", order_type="limit", quantity=D("0.5"),
                 price=D("100.5"))  # fmt: skip
    assert m.parse_replace(order_fields(t38="0.7"), **order) == m.Replace(D("0.7"), None)
    assert m.parse_replace(order_fields(t44="99"), **order) == m.Replace(None, D("99"))
    with pytest.raises(FixInputError, match=r"Side \(54\) cannot change"):
        m.parse_replace(order_fields(t54="2"), **order)


def test_engine_error_then_text_in_fix_terms():
    assert (
        m.engine_error_text("symbol", "symbol: unknown symbol 'X/Y'")
        == "Symbol (55): unknown symbol 'X/Y'"
    )
    assert m.rej_reason_for("symbol") == m.REJ_UNKNOWN_SYMBOL
    assert m.rej_reason_for("account") == m.REJ_UNKNOWN_ACCOUNT


# --- outbound ------------------------------------------------------------------------------


def test_every_status_has_an_ord_status():
    assert set(m.ORD_STATUSES) == set(OrderStatus)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("PENDING_NEW", "A"), ("SUBMITTED", "A"), ("ACCEPTED", "0"), ("PARTIALLY_FILLED", "1"),
        ("FILLED", "2"), ("PENDING_CANCEL", "6"), ("CANCELED", "4"), ("PENDING_REPLACE", "E"),
        ("DENIED", "8"), ("REJECTED", "8"), ("EXPIRED", "C"),
    ],
)  # fmt: skip
def test_status_then_ord_status(status, code):
    assert m.ord_status(status) == code


def test_every_lifecycle_event_then_a_report_or_deliberately_none():
    kinds = {kind for _, kind in TRANSITIONS}
    silent = {kind for kind in kinds if m.report_kind(kind) is None}
    assert silent == {"OrderSubmitted"}  # sent to the venue: still PendingNew for FIX


def test_fill_racing_a_cancel_then_trade_with_pending_cancel_status():
    # FIX 4.4 precedence: PendingCancel (6) outranks PartiallyFilled while the cancel is out
    f = facts(kind="OrderFilled", status="PENDING_CANCEL", filled=D("0.2"),
              average_price=D("100"), last_qty=D("0.2"), last_px=D("100"), trade_id="t9")  # fmt: skip
    body = dict(m.execution_report(f, cl_ord_id="c-1"))
    assert (body[m.EXEC_TYPE], body[m.ORD_STATUS]) == ("F", "6")
    assert (body[m.LAST_QTY], body[m.LAST_PX], body[m.SECONDARY_EXEC_ID]) == ("0.2", "100", "t9")
    assert (body[m.CUM_QTY], body[m.LEAVES_QTY], body[m.AVG_PX]) == ("0.2", "0.3", "100")


def test_canceled_after_partial_fill_then_canceled_with_no_leaves():
    f = facts(kind="OrderCanceled", status="CANCELED", filled=D("0.2"), average_price=D("100"))
    body = dict(m.execution_report(f, cl_ord_id="cx-2", orig_cl_ord_id="c-1"))
    assert (body[m.EXEC_TYPE], body[m.ORD_STATUS]) == ("4", "4")
    assert (body[m.CUM_QTY], body[m.LEAVES_QTY]) == ("0.2", "0")
    assert (body[m.CL_ORD_ID], body[m.ORIG_CL_ORD_ID]) == ("cx-2", "c-1")


def test_denied_then_rejected_with_the_risk_reason_in_text():
    f = facts(kind="OrderDenied", status="DENIED", reason="MAX_ORDER_QUANTITY: quantity=150")
    body = dict(m.execution_report(f, cl_ord_id="c-1"))
    assert (body[m.EXEC_TYPE], body[m.ORD_STATUS], body[m.ORD_REJ_REASON]) == ("8", "8", "3")
    assert body[m.TEXT] == "MAX_ORDER_QUANTITY: quantity=150" and body[m.LEAVES_QTY] == "0"


def test_replaced_then_replaced_exec_type_and_exec_id_per_change():
    f = facts(kind="OrderReplaced", status="ACCEPTED", seq=9, quantity=D("0.7"))
    body = dict(m.execution_report(f, cl_ord_id="r-2", orig_cl_ord_id="c-1"))
    assert (body[m.EXEC_TYPE], body[m.ORD_STATUS], body[m.ORDER_QTY]) == ("5", "0", "0.7")
    assert body[m.EXEC_ID] == "7-9"


def test_status_answer_then_exec_type_i():
    body = dict(m.execution_report(facts(), cl_ord_id="c-1", exec_type="I", exec_id="st-1"))
    assert (body[m.EXEC_TYPE], body[m.ORD_STATUS], body[m.EXEC_ID]) == ("I", "0", "st-1")


def test_facts_through_a_stream_record_then_the_same():
    f = facts(kind="OrderFilled", last_qty=D("0.1"), last_px=D("1E+2"), average_price=D("100"))
    assert OrderFacts.from_record(f.to_record()) == f
    g = facts(price=None)
    assert OrderFacts.from_record(g.to_record()) == g


def test_cancel_reject_then_fields_of_an_order_cancel_reject():
    body = dict(m.cancel_reject(order_id="NONE", cl_ord_id="x", orig_cl_ord_id="y", status=None,
                                response_to="1", reason=m.CXL_UNKNOWN_ORDER, text="no such order"))  # fmt: skip
    assert body == {37: "NONE", 11: "x", 41: "y", 39: "8", 434: "1", 102: "1", 58: "no such order"}
