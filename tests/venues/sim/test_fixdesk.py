"""The simulated exchange's FIX desk, in process: FIX requests against the matching engine
and the execution reports it owes for every change of the account's orders."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.venues.sim.test_engine import BTC, Clock
from venues.sim.engine import BUY, GTC, LIMIT, SELL, MatchingEngine
from venues.sim.fixdesk import FixDesk


@pytest.fixture
def desk():
    clock = Clock()
    engine = MatchingEngine([BTC], clock)
    for name in ("default", "house"):
        engine.add_account(name, {"USDT": D("1000000"), "BTC": D("100")})
    return FixDesk(engine=lambda: engine, clock=clock), engine


def new_order(cl, side="1", qty="1", price="60000", tif="1", ord_type="2"):
    fields = {"11": cl, "55": "BTC/USDT", "54": side, "38": qty, "40": ord_type, "59": tif}
    if price is not None:
        fields["44"] = price
    return {"type": "D", "fields": fields}


def reports(messages, exec_type=None):
    return [
        m["fields"]
        for m in messages
        if m["type"] == "8" and (exec_type is None or m["fields"]["150"] == exec_type)
    ]


def test_limit_order_rests_then_new_with_leaves(desk):
    desk, engine = desk
    out = desk.handle(new_order("c1"))
    assert [r["150"] for r in reports(out)] == ["0"]
    new = reports(out)[0]
    assert (new["11"], new["39"], new["151"], new["14"], new["55"]) == (
        "c1",
        "0",
        "1",
        "0",
        "BTC/USDT",
    )
    assert [o.client_order_id for o in engine.open_orders("default")] == ["c1"]


def test_crossing_order_then_trade_reports_add_up_with_trade_ids(desk):
    desk, engine = desk
    engine.place_order(
        "house", "BTCUSDT", SELL, LIMIT, quantity=D("0.4"), price=D("60000"), time_in_force=GTC
    )
    engine.place_order(
        "house", "BTCUSDT", SELL, LIMIT, quantity=D("0.6"), price=D("60010"), time_in_force=GTC
    )
    out = desk.handle(new_order("c1", price="60010"))
    trades = reports(out, "F")
    assert [(t["32"], t["31"], t["14"], t["151"], t["39"]) for t in trades] == [
        ("0.4", "60000", "0.4", "0.6", "1"),
        ("0.6", "60010", "1", "0", "2"),
    ]
    assert trades[-1]["6"] == "60006"  # (0.4*60000 + 0.6*60010) / 1
    assert len({t["17"] for t in trades}) == 2
    assert {t["17"] for t in trades} == {
        str(t.id) for t in engine.account_trades[("default", "BTCUSDT")]
    }
    assert desk.poll() == []  # nothing reported twice


def test_ioc_remainder_then_canceled_after_its_fill(desk):
    desk, engine = desk
    engine.place_order(
        "house", "BTCUSDT", SELL, LIMIT, quantity=D("0.4"), price=D("60000"), time_in_force=GTC
    )
    out = desk.handle(new_order("c1", tif="3"))
    assert [(r["150"], r["39"]) for r in reports(out)] == [("0", "0"), ("F", "1"), ("4", "4")]
    assert reports(out)[-1]["14"] == "0.4"


def test_resting_order_filled_from_elsewhere_then_poll_reports_the_fill(desk):
    desk, engine = desk
    desk.handle(new_order("c1", qty="0.5"))
    engine.place_order(
        "house", "BTCUSDT", SELL, LIMIT, quantity=D("0.2"), price=D("60000"), time_in_force=GTC
    )
    fills = reports(desk.poll(), "F")
    assert [(f["11"], f["32"], f["14"], f["151"], f["851"]) for f in fills] == [
        ("c1", "0.2", "0.2", "0.3", "1")
    ]


def test_order_entered_over_rest_then_reported_over_fix_too(desk):
    desk, engine = desk
    desk.poll()
    engine.place_order(
        "default",
        "BTCUSDT",
        BUY,
        LIMIT,
        quantity=D("0.1"),
        price=D("59000"),
        time_in_force=GTC,
        client_order_id="rest-1",
    )
    assert [(r["11"], r["150"]) for r in reports(desk.poll())] == [("rest-1", "0")]
    engine.cancel_order("default", "BTCUSDT", orig_client_order_id="rest-1")
    assert [(r["11"], r["150"]) for r in reports(desk.poll())] == [("rest-1", "4")]


def test_cancel_then_canceled_with_both_ids(desk):
    desk, engine = desk
    order_id = reports(desk.handle(new_order("c1")))[0]["37"]
    out = desk.handle(
        {"type": "F", "fields": {"11": "x1", "41": "c1", "55": "BTC/USDT", "54": "1"}}
    )
    (canceled,) = reports(out)
    assert (canceled["150"], canceled["39"], canceled["11"], canceled["41"], canceled["37"]) == (
        "4",
        "4",
        "x1",
        "c1",
        order_id,
    )
    assert engine.open_orders("default") == []
    assert desk.poll() == []


@pytest.mark.parametrize(("orig", "reason"), [("nope", "1"), ("c1", "0")])
def test_cancel_unknown_or_done_then_cancel_reject_with_reason(desk, orig, reason):
    desk, engine = desk
    desk.handle(new_order("c1"))
    desk.handle({"type": "F", "fields": {"11": "x1", "41": "c1", "55": "BTC/USDT", "54": "1"}})
    out = desk.handle(
        {"type": "F", "fields": {"11": "x2", "41": orig, "55": "BTC/USDT", "54": "1"}}
    )
    (reject,) = [m["fields"] for m in out if m["type"] == "9"]
    assert (reject["102"], reject["434"], reject["11"]) == (reason, "1", "x2")


def test_replace_then_same_order_id_and_chain_cum_qty(desk):
    desk, engine = desk
    order_id = reports(desk.handle(new_order("c1", qty="1")))[0]["37"]
    engine.place_order(
        "house", "BTCUSDT", SELL, LIMIT, quantity=D("0.3"), price=D("60000"), time_in_force=GTC
    )
    desk.poll()
    out = desk.handle(
        {
            "type": "G",
            "fields": {
                "11": "c2",
                "41": "c1",
                "55": "BTC/USDT",
                "54": "1",
                "38": "2",
                "40": "2",
                "44": "59000",
            },
        }
    )
    (replaced,) = reports(out)
    assert (replaced["150"], replaced["37"], replaced["11"], replaced["41"]) == (
        "5",
        order_id,
        "c2",
        "c1",
    )
    assert (replaced["38"], replaced["14"], replaced["151"], replaced["39"], replaced["44"]) == (
        "2",
        "0.3",
        "1.7",
        "1",
        "59000",
    )
    assert [(o.client_order_id, o.orig_qty) for o in engine.open_orders("default")] == [
        ("c2", D("1.7"))
    ]
    assert desk.poll() == []  # the old order's cancel is the replace: not reported again
    status = desk.handle(
        {"type": "H", "fields": {"11": "c1", "55": "BTC/USDT", "54": "1", "790": "s1"}}
    )
    assert [(r["11"], r["37"], r["14"], r["790"]) for r in reports(status)] == [
        ("c2", order_id, "0.3", "s1")
    ]


def test_status_of_unknown_order_then_rejected_unknown_order(desk):
    desk, _ = desk
    out = desk.handle(
        {"type": "H", "fields": {"11": "nope", "55": "BTC/USDT", "54": "1", "790": "s1"}}
    )
    (status,) = reports(out)
    assert (status["150"], status["39"], status["103"], status["790"]) == ("I", "8", "5", "s1")


def test_mass_status_then_one_report_per_working_order_last_flagged(desk):
    desk, _ = desk
    out = desk.handle({"type": "AF", "fields": {"584": "m0", "585": "7"}})
    assert [(r["911"], r["912"], r["37"]) for r in reports(out)] == [("0", "Y", "NONE")]
    desk.handle(new_order("c1"))
    desk.handle(new_order("c2", price="59000"))
    out = desk.handle({"type": "AF", "fields": {"584": "m1", "585": "1", "55": "BTC/USDT"}})
    assert [(r["11"], r["150"], r["584"], r["911"], r["912"]) for r in reports(out)] == [
        ("c1", "I", "m1", "2", "N"),
        ("c2", "I", "m1", "2", "Y"),
    ]


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"44": None}, "Price (44) is required on a limit order"),
        ({"40": "1"}, "Price (44) is not allowed on a market order"),
        ({"55": "DOGE/USDT"}, "Symbol (55) 'DOGE/USDT' is not traded here"),
        ({"38": "-1"}, "tag 38: '-1' must be positive"),
        ({"38": "20"}, "Account has insufficient balance for requested action."),
    ],
)
def test_bad_new_order_then_rejected_with_the_reason(desk, fields, text):
    desk, engine = desk
    message = new_order("c1")
    for tag, value in fields.items():
        if value is None:
            message["fields"].pop(tag)
        else:
            message["fields"][tag] = value
    (rejected,) = reports(desk.handle(message))
    assert (rejected["150"], rejected["39"], rejected["58"]) == ("8", "8", text)
    assert engine.open_orders("default") == []


def test_duplicate_cl_ord_id_then_rejected_duplicate(desk):
    desk, _ = desk
    desk.handle(new_order("c1"))
    (rejected,) = reports(desk.handle(new_order("c1")))
    assert (rejected["150"], rejected["103"]) == ("8", "6")


def test_possdup_resend_of_a_known_order_then_not_placed_twice(desk):
    desk, engine = desk
    desk.handle(new_order("c1"))
    out = desk.handle(new_order("c1"), poss_dup=True)
    assert [r["150"] for r in reports(out)] == ["I"]
    assert len(engine.open_orders("default")) == 1


def test_silent_order_then_reports_and_first_status_lost_second_status_answered(desk):
    desk, engine = desk
    desk.silent_orders = 1
    assert desk.handle(new_order("c1")) == []
    status = {"type": "H", "fields": {"11": "c1", "55": "BTC/USDT", "54": "1"}}
    assert desk.handle(status) == []
    assert [(r["11"], r["39"]) for r in reports(desk.handle(status))] == [("c1", "0")]
    assert len(engine.open_orders("default")) == 1
