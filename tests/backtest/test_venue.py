"""The simulated venue's matching against a recorded book: walking the book, queue
position under both queue models, fees, transforms."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from backtest.config import VenueConfig
from backtest.data import Depth, Snapshot, Ticker
from backtest.venue import SimVenue, SourceBook
from venues.base import VenueOrderStatus


def book(
    bids=(("99.00", "5"), ("98.00", "5")), asks=(("101.00", "1"), ("102.00", "2"), ("103.00", "5"))
):
    src = SourceBook("X")
    src.on_snapshot(Snapshot(0, "rec", "X", 10, [list(b) for b in bids], [list(a) for a in asks]))
    return src


def venue(src, queue_model="conservative", **kw):
    cfg = VenueConfig(name="v", maker_fee=D("0.0001"), taker_fee=D("0.001"), **kw)
    return SimVenue(cfg, {"X": src}, queue_model=queue_model)


def place(v, side="buy", type="market", qty="2.5", price=None, tif="GTC", cid="c1"):
    return v.place(
        client_order_id=cid,
        symbol="X",
        side=side,
        type=type,
        quantity=D(qty),
        price=None if price is None else D(price),
        time_in_force=tif,
        now_ns=1,
    )


def diff(src, uid, bids=(), asks=()):
    src.on_depth(Depth(uid, "rec", "X", uid, uid, [list(b) for b in bids], [list(a) for a in asks]))


def test_market_order_walks_the_book_at_each_levels_price_and_pays_taker_fee():
    v = venue(book())

    order, execs = place(v, qty="2.5")

    assert [(e.trade.price, e.trade.quantity) for e in execs] == [
        (D("101"), D("1")),
        (D("102"), D("1.5")),
    ]
    assert order.status == VenueOrderStatus.FILLED
    assert execs[0].trade.fee == D("0.101") and execs[0].trade.is_maker is False


def test_market_order_that_runs_out_of_book_expires_with_what_it_got():
    order, execs = place(venue(book()), qty="10")

    assert order.filled == D("8") and order.status == VenueOrderStatus.EXPIRED


def test_marketable_limit_stops_at_its_price_and_rests_the_rest():
    v = venue(book())

    order, execs = place(v, type="limit", price="102", qty="5")

    assert sum(e.trade.quantity for e in execs) == D("3")
    assert order.status == VenueOrderStatus.PARTIALLY_FILLED and v.resting["X"] == [order]


def test_fok_that_cannot_fill_entirely_expires_untouched():
    order, execs = place(venue(book()), type="limit", price="101", qty="2", tif="FOK")

    assert execs == [] and order.status == VenueOrderStatus.EXPIRED


def test_what_we_took_is_gone_until_the_next_depth_update():
    src = book()
    v = venue(src)
    place(v, qty="1", cid="a")

    _, execs = place(v, qty="1", cid="b")

    assert execs[0].trade.price == D("102")  # 101 was taken by the first order
    diff(src, 11, asks=[("101.00", "1")])
    v.on_book("X", 2)
    _, execs = place(v, qty="1", cid="c")
    assert execs[0].trade.price == D("101")


def test_resting_limit_fills_only_after_the_quantity_ahead_has_traded():
    v = venue(book())
    order, _ = place(v, type="limit", price="99", qty="2")
    assert order.ahead == D("5")

    assert v.on_trade("X", D("99"), D("4"), "sell", 2) == []
    execs = v.on_trade("X", D("99"), D("2"), "sell", 3)

    assert [(e.trade.quantity, e.trade.price, e.trade.is_maker) for e in execs] == [
        (D("1"), D("99"), True)
    ]
    assert execs[0].trade.fee == D("0.0099")


def test_trade_through_our_price_fills_us_entirely():
    v = venue(book())
    order, _ = place(v, type="limit", price="99", qty="2")

    execs = v.on_trade("X", D("98.5"), D("0.1"), "sell", 2)

    assert (
        sum(e.trade.quantity for e in execs) == D("2") and order.status == VenueOrderStatus.FILLED
    )


def test_buy_trades_do_not_move_a_bid_queue():
    v = venue(book())
    order, _ = place(v, type="limit", price="99", qty="2")

    assert v.on_trade("X", D("99"), D("50"), "buy", 2) == []
    assert order.ahead == D("5")


def test_touch_moving_through_a_resting_order_fills_it():
    src = book()
    v = venue(src)
    order, _ = place(v, type="limit", price="99", qty="2")

    src.on_ticker(Ticker(2, "rec", "X", D("98"), D("1"), D("98.5"), D("1"), 11))
    execs = v.on_book("X", 2)

    assert sum(e.trade.quantity for e in execs) == D("2") and execs[0].trade.price == D("99")


@pytest.mark.parametrize(
    ("model", "expected_ahead"), [("conservative", D("5")), ("probabilistic", D("2.5"))]
)
def test_cancels_at_the_level_move_the_queue_by_the_model(model, expected_ahead):
    src = book()
    v = venue(src, queue_model=model)
    order, _ = place(v, type="limit", price="99", qty="1")  # 5 ahead
    diff(src, 11, bids=[("99.00", "10")])  # 5 join behind us: 5 ahead, us, 5 behind
    v.on_book("X", 2)

    diff(src, 12, bids=[("99.00", "5")])  # 5 canceled, from where?
    v.on_book("X", 3)

    # conservative: cancels are from behind; probabilistic, f(x)=x^2: 5^2/(5^2+5^2) = half
    assert order.ahead == expected_ahead


def test_level_shrinking_below_the_quantity_ahead_caps_it_in_both_models():
    src = book()
    v = venue(src)
    order, _ = place(v, type="limit", price="99", qty="1")

    diff(src, 11, bids=[("99.00", "2")])
    v.on_book("X", 2)

    assert order.ahead == D("2")


def test_price_offset_and_depth_scale_transform_the_venue():
    v = venue(book(), price_offset_bp=10.0, depth_scale=2.0, tick_size=D("0.01"))

    assert v.best_ask("X") == (D("101.11"), D("2"))  # 101 x 1.001 = 101.101, rounded up
    assert v.best_bid("X") == (D("99.09"), D("10"))  # 99 x 1.001 = 99.099, rounded down
    _, execs = place(v, qty="3")
    assert [(e.trade.price, e.trade.quantity) for e in execs] == [
        (D("101.11"), D("2")),
        (D("102.11"), D("1")),
    ]


def test_ticker_newer_than_the_depth_is_the_top_and_an_older_one_is_ignored():
    src = book()
    src.on_ticker(Ticker(1, "rec", "X", D("99.5"), D("0.3"), D("100.5"), D("0.2"), 11))
    assert src.best_ask() == (D("100.5"), D("0.2"))
    assert list(src.levels(False))[:2] == [(D("100.5"), D("0.2")), (D("101.00"), D("1"))]

    diff(src, 11, asks=[("101.00", "0.7")])  # the depth caught up: the ticker is old news
    assert src.best_ask() == (D("101.00"), D("0.7"))
    src.on_ticker(Ticker(2, "rec", "X", D("98"), D("1"), D("99.9"), D("1"), 11))
    assert src.best_ask() == (D("101.00"), D("0.7"))


def test_cancel_amend_and_unknown_orders():
    v = venue(book())
    order, _ = place(v, type="limit", price="99", qty="2")

    amended, execs = v.amend("c1", quantity=D("3"), price=D("101"), now_ns=2)
    assert amended is order and [(e.trade.price, e.trade.quantity) for e in execs] == [
        (D("101"), D("1"))
    ]
    assert v.cancel("c1") is order and order.status == VenueOrderStatus.CANCELED
    assert v.cancel("c1") is None and v.cancel("nope") is None
    assert order.answer().trades[0].price == D("101")
