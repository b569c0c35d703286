"""TCA figures and the venue score with known numbers (routing/tca_math.py, pure)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing import tca_math as tm


def fp(venue: str, qty: str, price: str, **kw) -> tm.FillPoint:
    return tm.FillPoint(venue=venue, quantity=D(qty), price=D(price), **kw)


# --- signs -------------------------------------------------------------------------------


def test_slippage_when_buy_above_or_sell_below_arrival_then_positive_cost():
    assert tm.slippage_bp("buy", D("100.10"), D("100")) == D("10")
    assert tm.slippage_bp("sell", D("99.90"), D("100")) == D("10")
    assert tm.slippage_bp("buy", D("99.95"), D("100")) == D("-5")  # price improvement


def test_markout_when_mid_moves_our_way_then_positive():
    assert tm.markout_bp("buy", D("100"), D("100.20")) == D("20")
    assert tm.markout_bp("sell", D("100"), D("100.20")) == D("-20")  # sold before a rise


def test_effective_spread_when_buy_lifts_offer_then_twice_the_half_spread():
    assert tm.effective_spread_bp("buy", D("100.05"), D("100")) == D("10")
    assert tm.effective_spread_bp("sell", D("99.95"), D("100")) == D("10")


def test_fee_in_quote_when_charged_in_base_then_times_price_and_third_asset_ignored():
    args = {"base": "BTC", "quote": "USDT", "price": D("60000")}
    assert tm.fee_in_quote(D("0.001"), "BTC", **args) == D("60")
    assert tm.fee_in_quote(D("6"), "USDT", **args) == D("6")
    assert tm.fee_in_quote(D("1"), "BNB", **args) == D("0")


def test_side_when_not_buy_or_sell_then_refused():
    with pytest.raises(ValueError, match="side"):
        tm.order_figures("hold", None, [])


# --- one order ---------------------------------------------------------------------------


def test_order_figures_when_two_fills_then_known_numbers():
    # Arrange: a buy arriving at mid 100, filled 1 @ 100.10 and 1 @ 100.30
    fills = [
        fp("sim-a", "1", "100.10", fee_quote=D("0.1001"), mid_at_fill=D("100"),
           mid_after={1: D("100.20"), 5: D("100.10"), 60: None}),
        fp("sim-b", "1", "100.30", fee_quote=D("0.1003"), mid_at_fill=D("100.20"),
           mid_after={1: D("100.30"), 5: None, 60: None}),
    ]  # fmt: skip
    # Act
    fig = tm.order_figures("buy", D("100"), fills)
    # Assert
    assert fig.filled_quantity == D("2") and fig.average_price == D("100.20")
    assert fig.slippage_bp == D("20.00")  # (100.20 - 100) / 100
    # fills' effective spreads: 2 x 0.10 / 100 = 20 bp and 2 x 0.10 / 100.20 = 19.96 bp
    assert fig.effective_spread_bp == D("19.98")
    assert fig.fees == D("0.2004") and fig.fees_bp == D("10.00")
    # +1 s: (100.20 - 100.10) / 100.10 = 9.99 bp and 0 bp, by quantity
    assert fig.markouts_bp == {1: D("5.00"), 5: D("0.00"), 60: None}


def test_figures_when_rounding_to_zero_then_never_negative_zero():
    fig = tm.order_figures("buy", D("60000"), [fp("sim-a", "1", "59999.99995")])
    assert str(fig.slippage_bp) == "0.00"


def test_order_figures_when_no_fill_or_no_arrival_then_unknowns_are_none():
    fig = tm.order_figures("sell", D("100"), [])
    assert fig.average_price is None and fig.slippage_bp is None and fig.fees_bp is None
    fig = tm.order_figures("sell", None, [fp("sim-a", "1", "99")])
    assert fig.average_price == D("99") and fig.slippage_bp is None


# --- many orders -------------------------------------------------------------------------


def _book() -> list[tm.OrderFills]:
    parent = tm.OrderFills(  # a parent buy split over two venues
        order_id=1, side="buy", arrival_mid=D("100"),
        fills=[fp("sim-a", "1", "100.10"), fp("sim-b", "1", "100.30")],
    )  # fmt: skip
    direct = tm.OrderFills(  # a sell sent straight to sim-a
        order_id=2, side="sell", arrival_mid=D("200"), fills=[fp("sim-a", "2", "199.90")]
    )
    return [parent, direct]


def test_aggregate_when_parent_split_over_venues_then_each_fill_counted_once():
    # weights are arrival notional: 1 x 100, 1 x 100, 2 x 200; slippages 10, 30, 5 bp
    every = tm.aggregate(_book())
    assert (every.orders, every.fills) == (2, 3)
    assert every.slippage_bp == D("10.00")  # (100x10 + 100x30 + 400x5) / 600
    assert every.filled_notional == D("100.10") + D("100.30") + D("399.80")


def test_aggregate_per_venue_then_only_that_venues_fills():
    a = tm.aggregate(_book(), venue="sim-a")
    b = tm.aggregate(_book(), venue="sim-b")
    assert (a.orders, a.fills, a.slippage_bp) == (2, 2, D("6.00"))  # (100x10 + 400x5) / 500
    assert (b.orders, b.fills, b.slippage_bp) == (1, 1, D("30.00"))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["sim-a", "sim-b", "sim-c"]),
            st.integers(1, 1000),
            st.integers(9_000, 11_000),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_aggregate_of_one_order_then_its_slippage_is_the_order_slippage(fills):
    points = [fp(v, str(D(q) / 100), str(D(p) / 100)) for v, q, p in fills]
    order = tm.OrderFills(order_id=1, side="buy", arrival_mid=D("100"), fills=points)
    fig = tm.order_figures("buy", D("100"), points)
    agg = tm.aggregate([order])
    assert agg.fills == len(points)
    assert abs(agg.slippage_bp - fig.slippage_bp) <= D("0.01")
    parts = sum((tm.aggregate([order], venue=v).fills for v in {p.venue for p in points}), 0)
    assert parts == len(points)  # per venue, each fill exactly once


# --- venue quality -----------------------------------------------------------------------


def test_venue_quality_when_no_evidence_then_score_one():
    q = tm.venue_quality([], [])
    assert q.score == D("1") and q.children == 0 and q.fill_rate is None


def test_venue_quality_with_known_children_then_known_score():
    # Arrange: 4 children, one rejected; sent 1, 1, 2 (filled 1, 0.5, 2); latencies
    # 10, 30, 40 and 2000 ms; a price improvement; one fill marked out -10 / -30 bp
    children = [
        tm.ChildOutcome(D("1"), D("1"), False, 10.0, D("-2")),
        tm.ChildOutcome(D("1"), D("0.5"), False, 30.0, D("-2")),
        tm.ChildOutcome(D("2"), D("2"), False, 2000.0, D("-2")),
        tm.ChildOutcome(D("1"), D("0"), True, 40.0, None),
    ]
    markouts = [tm.MarkoutPoint(D("1"), {1: D("-10"), 5: D("-30")})]
    # Act
    q = tm.venue_quality(children, markouts)
    # Assert
    assert q.fill_rate == D("0.8750") and q.reject_rate == D("0.2500")
    assert q.ack_latency_p50_ms == 30 and q.slippage_bp == D("-2.00")
    assert q.markouts_bp == {1: D("-10.00"), 5: D("-30.00")}
    # qualities: fill .875, reject .75, latency 1, slippage 1, markout 1 - 20/20 = 0
    # raw = .35x.875 + .25x.75 + .1 + .1 + 0 = .69375; 4 children vs a prior of 5:
    # score = 1 - (1 - .69375) x 4/9
    assert q.score == D("0.8639")


def test_venue_quality_when_venue_rejects_everything_then_score_falls_with_evidence():
    few = tm.venue_quality([tm.ChildOutcome(D("1"), D("0"), True, None, None)], [])
    many = tm.venue_quality([tm.ChildOutcome(D("1"), D("0"), True, None, None)] * 45, [])
    assert D("0") < many.score < few.score < D("1")
    assert many.score == D("0.1000")  # the reject quality alone (0), shrunk 45/50


def test_aggregate_by_when_fill_in_two_buckets_then_same_as_one_aggregate_each():
    book = _book()
    found = tm.aggregate_by(book, lambda o, f: [("venue", f.venue), ("all", "")])
    assert found[("venue", "sim-a")] == tm.aggregate(book, venue="sim-a")
    assert found[("venue", "sim-b")] == tm.aggregate(book, venue="sim-b")
    assert found[("all", "")] == tm.aggregate(book)
    assert tm.aggregate(book, venue="sim-z").fills == 0  # no fill there: an empty aggregate
