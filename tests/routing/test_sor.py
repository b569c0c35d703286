"""The smart order router's planner (routing/sor.py, pure): its rules one by one, then
hypothesis properties over random books and venue conditions."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marketdata.book import MdState
from marketdata.consolidated import VenueBook
from routing.sor import (
    Child,
    OrderSpec,
    Plan,
    VenueCondition,
    VenueDecision,
    Weights,
    plan,
)

NOW = 1_000_000.0
SYMBOL = "BTC/USDT"


def vb(venue, bids=(), asks=(), *, age=0.1, state=MdState.LIVE, reason="", interval=2.0):
    return VenueBook(
        venue=venue,
        symbol=SYMBOL,
        state=state,
        reason=reason,
        bids=[(D(p), D(q)) for p, q in bids],
        asks=[(D(p), D(q)) for p, q in asks],
        ts=NOW - age,
        interval_s=interval,
    )


def cond(venue, **kw):
    kw = {k: D(v) if isinstance(v, str) else v for k, v in kw.items()}
    return VenueCondition(venue=venue, **kw)


def conds(*items):
    return {c.venue: c for c in items}


def buy(qty, limit=None, tif="GTC"):
    return OrderSpec(SYMBOL, "buy", "limit" if limit else "market", D(qty), limit and D(limit), tif)


def sell(qty, limit=None, tif="GTC"):
    return OrderSpec(
        SYMBOL, "sell", "limit" if limit else "market", D(qty), limit and D(limit), tif
    )


def split(p: Plan) -> dict[str, tuple[D, D]]:
    return {c.venue: (c.quantity, c.price) for c in p.children}


def decision(p: Plan, venue: str) -> VenueDecision:
    (d,) = [d for d in p.venues if d.venue == venue]
    return d


# --- the fee-aware sweep --------------------------------------------------------------


def test_market_buy_larger_than_best_top_level_sweeps_both_venues_by_price() -> None:
    a = vb("sim-a", asks=[("100", "1"), ("101", "2")])
    b = vb("sim-b", asks=[("100.5", "1"), ("102", "2")])
    p = plan(buy("2.5"), [a, b], conds(cond("sim-a"), cond("sim-b")), NOW)
    # 100 (a) -> 100.5 (b) -> 101 (a, half a level)
    assert split(p) == {"sim-a": (D("1.5"), D("101")), "sim-b": (D("1"), D("100.5"))}
    assert [c.venue for c in p.children] == ["sim-a", "sim-b"]  # best venue first
    assert decision(p, "sim-a").reason == "routed 1.5 up to 101 over 2 levels"
    assert decision(p, "sim-a").available == D(3)
    assert p.unroutable is None


def test_routing_md_example_fees_interleave_the_two_venues_levels() -> None:
    a = vb("sim-a", asks=[("100", "1"), ("101", "2")], age=0)
    b = vb("sim-b", asks=[("100.5", "1"), ("102", "2")], age=0)
    c = conds(cond("sim-a", taker_fee="0.001"), cond("sim-b", taker_fee="0.0009"))
    p = plan(buy("2.5"), [a, b], c, NOW)
    assert split(p) == {"sim-a": (D("1.5"), D(101)), "sim-b": (D(1), D("100.5"))}
    assert p.to_json()["children"] == [
        {"venue": "sim-a", "quantity": "1.5", "price": "101"},
        {"venue": "sim-b", "quantity": "1", "price": "100.5"},
    ]
    assert [v["reason"] for v in p.to_json()["venues"]] == [
        "routed 1.5 up to 101 over 2 levels",
        "routed 1 up to 100.5 over 1 level",
    ]


def test_buy_sweeps_by_fee_adjusted_ask_not_raw_ask() -> None:
    # raw: a is cheaper; net of fees (a 30 bp, b 0): 100 x 1.003 = 100.3 > 100.2
    a = vb("sim-a", asks=[("100", "1")])
    b = vb("sim-b", asks=[("100.2", "1")])
    c = conds(cond("sim-a", taker_fee="0.003"), cond("sim-b"))
    p = plan(buy("1"), [a, b], c, NOW)
    assert split(p) == {"sim-b": (D(1), D("100.2"))}
    da = decision(p, "sim-a")
    assert da.fee_adjusted_price == D("100.300") and da.price == D(100)
    assert da.quantity == 0 and da.reason.startswith("worse fee-adjusted price")


def test_sell_sweeps_by_fee_adjusted_bid() -> None:
    # bid x (1 - fee): a 100 x 0.997 = 99.7 < b 99.9 x 1 = 99.9
    a = vb("sim-a", bids=[("100", "1")])
    b = vb("sim-b", bids=[("99.9", "1"), ("99.0", "5")])
    c = conds(cond("sim-a", taker_fee="0.003"), cond("sim-b"))
    p = plan(sell("1.5"), [a, b], c, NOW)
    # 99.9 (b), then 99.7 (a), never b's 99.0 (worse than a's net 99.7)
    assert split(p) == {"sim-b": (D(1), D("99.9")), "sim-a": (D("0.5"), D(100))}


def test_limit_price_is_never_crossed_by_a_buy_or_a_sell() -> None:
    a = vb("sim-a", bids=[("99", "1"), ("98", "1")], asks=[("100", "1"), ("101", "1")])
    b = vb("sim-b", bids=[("98.5", "1")], asks=[("100.5", "1")])
    c = conds(cond("sim-a"), cond("sim-b"))
    p = plan(buy("5", limit="100.5"), [a, b], c, NOW)
    assert split(p) == {"sim-a": (D(1), D(100)), "sim-b": (D(1), D("100.5"))}
    assert decision(p, "sim-a").available == D(1)  # only what is within the limit
    q = plan(sell("5", limit="98.5"), [a, b], c, NOW)
    assert split(q) == {"sim-a": (D(1), D(99)), "sim-b": (D(1), D("98.5"))}


def test_limit_with_nothing_within_it_routes_nothing_and_says_so() -> None:
    a = vb("sim-a", asks=[("100", "1")])
    b = vb("sim-b", asks=[])
    p = plan(buy("1", limit="99"), [a, b], conds(cond("sim-a"), cond("sim-b")), NOW)
    assert p.children == ()
    assert decision(p, "sim-a").reason == "no asks at or below limit 99"
    assert decision(p, "sim-b").reason == "no asks on the book"
    assert p.unroutable is None  # both may trade: the remainder can rest
    assert p.rest_venue == "sim-a"


# --- lot, minimums, balance ------------------------------------------------------------


def test_share_is_rounded_down_to_the_lot_and_the_rest_swept_elsewhere() -> None:
    a = vb("sim-a", asks=[("100", "0.15")])
    b = vb("sim-b", asks=[("100.1", "5")])
    c = conds(cond("sim-a", lot_size="0.1"), cond("sim-b", lot_size="0.01"))
    p = plan(buy("1"), [a, b], c, NOW)
    assert split(p) == {"sim-a": (D("0.1"), D(100)), "sim-b": (D("0.90"), D("100.1"))}
    assert "rounded to lot 0.1" in decision(p, "sim-a").reason


def test_quantities_and_prices_on_the_step_keep_the_orders_digits() -> None:
    a = vb("sim-a", asks=[("100.5", "3")])
    p = plan(buy("1.5"), [a], conds(cond("sim-a", lot_size="0.001", tick_size="0.01")), NOW)
    assert p.children[0].to_json() == {"venue": "sim-a", "quantity": "1.5", "price": "100.5"}
    rounded = plan(buy("1.23456"), [a], conds(cond("sim-a", lot_size="0.001")), NOW)
    assert str(rounded.children[0].quantity) == "1.234"
    # summed over levels of other digits: 0.30000 + 0.2 is 0.5
    b = vb("sim-b", asks=[("100", "0.30000"), ("100.10", "5.00000")])
    p = plan(buy("0.5"), [b], conds(cond("sim-b", lot_size="0.00001")), NOW)
    assert p.children[0].to_json() == {"venue": "sim-b", "quantity": "0.5", "price": "100.1"}
    whole = plan(buy("20"), [vb("sim-b", asks=[("100", "30")])], conds(cond("sim-b")), NOW)
    assert whole.children[0].to_json()["quantity"] == "20"  # not 2E+1


def test_share_below_min_notional_goes_to_the_next_venue_with_the_reason() -> None:
    a = vb("sim-a", asks=[("100", "0.04")])  # 4 USDT < 10
    b = vb("sim-b", asks=[("100.1", "5")])
    c = conds(cond("sim-a", min_notional="10"), cond("sim-b"))
    p = plan(buy("1"), [a, b], c, NOW)
    assert split(p) == {"sim-b": (D(1), D("100.1"))}
    assert decision(p, "sim-a").reason == "below min notional 10"
    assert decision(p, "sim-a").quantity == 0


def test_share_below_min_qty_is_dropped() -> None:
    a = vb("sim-a", asks=[("100", "0.004")])
    b = vb("sim-b", asks=[("100.1", "5")])
    c = conds(cond("sim-a", min_qty="0.01"), cond("sim-b"))
    p = plan(buy("1"), [a, b], c, NOW)
    assert split(p) == {"sim-b": (D(1), D("100.1"))}
    assert decision(p, "sim-a").reason == "below min qty 0.01"


def test_order_smaller_than_every_minimum_routes_nothing() -> None:
    a = vb("sim-a", asks=[("100", "1")])
    p = plan(buy("0.01"), [a], conds(cond("sim-a", min_notional="5")), NOW)
    assert p.children == () and p.unroutable is None
    assert decision(p, "sim-a").reason == "below min notional 5"


def test_buy_is_capped_by_quote_balance_at_the_child_price() -> None:
    a = vb("sim-a", asks=[("100", "1"), ("110", "1")])
    b = vb("sim-b", asks=[("120", "5")])
    # 150 USDT at a: 1 at 100 would leave 50, but the child is pinned at 110, so
    # qty x 110 <= 150 -> 1.36; the rest goes to b
    c = conds(cond("sim-a", balance="150", lot_size="0.01"), cond("sim-b"))
    p = plan(buy("2"), [a, b], c, NOW)
    qa, pa = split(p)["sim-a"]
    assert pa == D(110) and qa == D("1.36") and qa * pa <= 150
    assert split(p)["sim-b"][0] == D("0.64")
    assert "capped by balance 150" in decision(p, "sim-a").reason


def test_sell_is_capped_by_base_balance() -> None:
    a = vb("sim-a", bids=[("100", "5")])
    b = vb("sim-b", bids=[("99", "5")])
    p = plan(sell("3"), [a, b], conds(cond("sim-a", balance="1.2"), cond("sim-b")), NOW)
    assert split(p) == {"sim-a": (D("1.2"), D(100)), "sim-b": (D("1.8"), D(99))}


def test_venue_without_balance_is_skipped() -> None:
    a = vb("sim-a", asks=[("100", "5")])
    p = plan(buy("1"), [a], conds(cond("sim-a", balance="0")), NOW)
    assert p.unroutable == "NO_ROUTE: sim-a no balance (0 available)"


def test_child_price_is_rounded_to_tick_on_the_passive_side() -> None:
    a = vb("sim-a", bids=[("100.07", "1")], asks=[("100.07", "1")])
    c = conds(cond("sim-a", tick_size="0.05"))
    assert split(plan(buy("1"), [a], c, NOW)) == {"sim-a": (D(1), D("100.05"))}
    assert split(plan(sell("1"), [a], c, NOW)) == {"sim-a": (D(1), D("100.10"))}


# --- venues that may not trade ------------------------------------------------------


def test_breaker_stale_headroom_disabled_unconfigured_and_no_data_are_skipped() -> None:
    books = [
        vb("sim-a", asks=[("99", "9")]),
        vb("sim-b", asks=[("99", "9")], age=3.1),  # interval 2 s
        vb("sim-c", asks=[("99", "9")]),
        vb("sim-d", asks=[("99", "9")]),
        vb("sim-e", asks=[("99", "9")]),  # not in conditions
        vb("sim-g", asks=[("99", "9")], state=MdState.RESYNCING, reason="gap"),
        vb("sim-h", asks=[("101", "9")]),
    ]
    c = conds(
        cond("sim-a", breaker_open=True),
        cond("sim-b"),
        cond("sim-c", rate_headroom=0),
        cond("sim-d", enabled=False),
        cond("sim-f"),  # no book
        cond("sim-g"),
        cond("sim-h"),
    )
    p = plan(buy("1"), books, c, NOW)
    reasons = {d.venue: d.reason for d in p.venues}
    assert reasons == {
        "sim-a": "breaker open",
        "sim-b": "market data STALE (age 3.1 s)",
        "sim-c": "no rate-limit headroom",
        "sim-d": "disabled or does not list BTC/USDT",
        "sim-e": "not configured for routing (no venue conditions)",
        "sim-f": "no market data",
        "sim-g": "market data RESYNCING (age 0.1 s: gap)",
        "sim-h": "routed 1 up to 101 over 1 level",
    }
    assert split(p) == {"sim-h": (D(1), D(101))}
    assert all(d.quantity == 0 for d in p.venues if d.venue != "sim-h")
    assert decision(p, "sim-f").age_ms is None and decision(p, "sim-b").age_ms == 3100
    # a skipped venue still shows what its book held (what was passed over)
    assert decision(p, "sim-a").price == D(99) and decision(p, "sim-a").available == D(9)
    assert decision(p, "sim-f").price is None and decision(p, "sim-f").available == 0


def test_stale_after_s_tightens_the_books_own_interval() -> None:
    a = vb("sim-a", asks=[("100", "1")], age=0.8)
    b = vb("sim-b", asks=[("101", "1")], age=0.1)
    c = conds(cond("sim-a"), cond("sim-b"))
    assert split(plan(buy("1"), [a, b], c, NOW)) == {"sim-a": (D(1), D(100))}
    p = plan(buy("1"), [a, b], c, NOW, stale_after_s=0.5)
    assert split(p) == {"sim-b": (D(1), D(101))}
    assert decision(p, "sim-a").reason == "market data STALE (age 0.8 s)"


def test_no_venue_may_trade_gives_no_route_naming_each_venues_state() -> None:
    a = vb("sim-a", asks=[("100", "1")])
    b = vb("sim-b", asks=[("100", "1")], age=3.1)
    p = plan(buy("1"), [a, b], conds(cond("sim-a", breaker_open=True), cond("sim-b")), NOW)
    assert p.children == () and p.rest_venue is None
    assert p.unroutable == "NO_ROUTE: sim-a breaker open; sim-b market data STALE (age 3.1 s)"
    assert [d.venue for d in p.venues] == ["sim-a", "sim-b"]


def test_no_venue_at_all_is_no_route() -> None:
    assert plan(buy("1"), [], {}, NOW).unroutable == "NO_ROUTE: no venue for BTC/USDT"


def test_books_of_other_symbols_are_ignored_and_the_newest_book_of_a_venue_wins() -> None:
    other = VenueBook("sim-a", "ETH/USDT", MdState.LIVE, asks=[(D(1), D(100))], ts=NOW)
    old = vb("sim-a", asks=[("90", "1")], age=1.5)
    new = vb("sim-a", asks=[("100", "1")], age=0.1)
    p = plan(buy("1"), [other, old, new], conds(cond("sim-a")), NOW)
    assert split(p) == {"sim-a": (D(1), D(100))}


# --- quote age and score -----------------------------------------------------------------


def test_older_quote_at_the_same_price_comes_second() -> None:
    a = vb("sim-a", asks=[("100", "1")], age=1.5)
    b = vb("sim-b", asks=[("100", "1")], age=0.1)
    p = plan(buy("1.5"), [a, b], conds(cond("sim-a"), cond("sim-b")), NOW)
    assert split(p) == {"sim-b": (D(1), D(100)), "sim-a": (D("0.5"), D(100))}
    assert [c.venue for c in p.children] == ["sim-b", "sim-a"]


def test_old_quote_penalty_outweighs_a_small_price_edge() -> None:
    # a is 0.2 bp cheaper but its quote is 1.5 s old: 0.75 bp penalty at 0.5 bp/s
    a = vb("sim-a", asks=[("99.998", "1")], age=1.5)
    b = vb("sim-b", asks=[("100", "1")], age=0.0)
    p = plan(buy("1"), [a, b], conds(cond("sim-a"), cond("sim-b")), NOW)
    assert split(p) == {"sim-b": (D(1), D(100))}
    assert decision(p, "sim-a").reason.startswith("worse fee-adjusted price (incl. 0.75 bp")
    # without the age weight the cheaper quote wins
    no_age = Weights(age_bp_per_s=D(0))
    q = plan(buy("1"), [a, b], conds(cond("sim-a"), cond("sim-b")), NOW, weights=no_age)
    assert split(q) == {"sim-a": (D(1), D("99.998"))}


def test_score_breaks_a_tie_at_the_same_fee_adjusted_price() -> None:
    a = vb("sim-a", asks=[("100", "1")], age=0)
    b = vb("sim-b", asks=[("100", "1")], age=0)
    plain = Weights(score_bp=D(0))  # a tie even after penalties: the score decides
    c = conds(cond("sim-a", score="0.7"), cond("sim-b", score="0.9"))
    p = plan(buy("1"), [a, b], c, NOW, weights=plain)
    assert split(p) == {"sim-b": (D(1), D(100))}
    c2 = conds(cond("sim-a", score="0.9"), cond("sim-b", score="0.7"))
    assert split(plan(buy("1"), [a, b], c2, NOW, weights=plain)) == {"sim-a": (D(1), D(100))}


def test_low_score_discounts_a_slightly_cheaper_venue() -> None:
    # a is 1 bp cheaper, but its score 0.5 costs (1 - 0.5) x 5 bp = 2.5 bp
    a = vb("sim-a", asks=[("99.99", "1")], age=0)
    b = vb("sim-b", asks=[("100", "1")], age=0)
    c = conds(cond("sim-a", score="0.5"), cond("sim-b"))
    p = plan(buy("1"), [a, b], c, NOW)
    assert split(p) == {"sim-b": (D(1), D(100))}
    assert decision(p, "sim-a").score == D("0.5")
    # a clearly cheaper venue still wins despite its score
    a2 = vb("sim-a", asks=[("99.9", "1")], age=0)
    assert split(plan(buy("1"), [a2, b], c, NOW)) == {"sim-a": (D(1), D("99.9"))}


def test_equal_venues_tie_on_name() -> None:
    a = vb("sim-a", asks=[("100", "1")], age=0)
    b = vb("sim-b", asks=[("100", "1")], age=0)
    assert split(plan(buy("1"), [b, a], conds(cond("sim-b"), cond("sim-a")), NOW)) == {
        "sim-a": (D(1), D(100))
    }


# --- rest venue, FOK, input ----------------------------------------------------------------


def test_rest_venue_is_the_best_venue_that_admits_the_remainder() -> None:
    a = vb("sim-a", asks=[("101", "1")])  # best ask, but 20 USDT won't rest 1 at 99
    b = vb("sim-b", asks=[("102", "1")])
    c = vb("sim-c", asks=[("100", "1")], age=3)  # stale: may not trade
    cs = conds(cond("sim-a", balance="20"), cond("sim-b"), cond("sim-c"))
    p = plan(buy("1", limit="99"), [a, b, c], cs, NOW)
    assert p.children == () and p.rest_venue == "sim-b"
    ok = conds(cond("sim-a"), cond("sim-b"), cond("sim-c"))
    assert plan(buy("1", limit="99"), [a, b, c], ok, NOW).rest_venue == "sim-a"
    assert plan(buy("1"), [a, b], ok, NOW).rest_venue is None  # a market order never rests
    assert plan(buy("1", limit="99", tif="IOC"), [a, b], ok, NOW).rest_venue is None


def test_rest_venue_for_a_sell_and_after_a_partial_sweep() -> None:
    a = vb("sim-a", bids=[("100", "1")])
    b = vb("sim-b", bids=[("100.5", "0.5")])
    cs = conds(cond("sim-a"), cond("sim-b", balance="1"))  # 1 BTC at b
    p = plan(sell("2", limit="100.5"), [a, b], cs, NOW)
    assert split(p) == {"sim-b": (D("0.5"), D("100.5"))}
    # b has the best bid but only 0.5 BTC left after its child: 1.5 rests at a
    assert p.rest_venue == "sim-a"
    assert plan(sell("1", limit="100.5"), [a, b], cs, NOW).rest_venue == "sim-b"


def test_fok_that_cannot_be_filled_whole_gets_no_children() -> None:
    a = vb("sim-a", asks=[("100", "1")])
    b = vb("sim-b", asks=[("101", "1")])
    c = conds(cond("sim-a"), cond("sim-b"))
    p = plan(buy("3", tif="FOK"), [a, b], c, NOW)
    assert p.children == ()
    assert decision(p, "sim-a").reason == "FOK: only 2 of 3 routable now"
    full = plan(buy("2", tif="FOK"), [a, b], c, NOW)
    assert split(full) == {"sim-a": (D(1), D(100)), "sim-b": (D(1), D(101))}


@pytest.mark.parametrize(
    ("order", "field"),
    [
        (OrderSpec(SYMBOL, "hold", "market", D(1)), "side"),
        (OrderSpec(SYMBOL, "buy", "stop", D(1)), "type"),
        (OrderSpec(SYMBOL, "buy", "market", D(0)), "quantity"),
        (OrderSpec(SYMBOL, "buy", "market", D("NaN")), "quantity"),
        (OrderSpec(SYMBOL, "buy", "limit", D(1), D("-1")), "limit_price"),
        (OrderSpec(SYMBOL, "buy", "limit", D(1)), "limit_price"),
        (OrderSpec(SYMBOL, "buy", "market", D(1), time_in_force="DAY"), "time_in_force"),
    ],
)
def test_bad_order_raises_naming_the_field(order: OrderSpec, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        plan(order, [], {}, NOW)


def test_decision_json_has_exactly_the_api_keys_with_decimals_as_strings() -> None:
    a = vb("sim-a", asks=[("100", "1")])
    p = plan(buy("0.5"), [a, vb("sim-b")], conds(cond("sim-a", taker_fee="0.001")), NOW)
    assert decision(p, "sim-a").to_json() == {
        "venue": "sim-a",
        "price": "100",
        "fee_adjusted_price": "100.100",
        "available": "1",
        "age_ms": 100,
        "score": "1",
        "quantity": "0.5",
        "reason": "routed 0.5 up to 100 over 1 level",
    }
    assert decision(p, "sim-b").to_json()["price"] is None


# --- properties ----------------------------------------------------------------------

VENUES = ["v0", "v1", "v2", "v3"]
prices = st.integers(min_value=9_900, max_value=10_100).map(lambda n: D(n) / 100)
quantities = st.integers(min_value=1, max_value=500).map(lambda n: D(n) / 100)
steps = st.sampled_from([D(0), D("0.001"), D("0.01"), D("0.1")])


@st.composite
def venue_setups(draw):
    books = []
    conditions = {}
    for name in VENUES:
        if draw(st.booleans()) or name == "v0":
            asks = sorted(draw(st.lists(prices, max_size=6, unique=True)))
            bids = sorted(draw(st.lists(prices, max_size=6, unique=True)), reverse=True)
            books.append(
                VenueBook(
                    venue=name,
                    symbol=SYMBOL,
                    state=draw(st.sampled_from([MdState.LIVE] * 4 + [MdState.STALE])),
                    bids=[(p, draw(quantities)) for p in bids],
                    asks=[(p, draw(quantities)) for p in asks],
                    ts=NOW - draw(st.floats(min_value=0, max_value=2.5)),
                )
            )
        if draw(st.integers(0, 5)):
            conditions[name] = VenueCondition(
                venue=name,
                taker_fee=draw(st.sampled_from([D(0), D("0.0005"), D("0.001"), D("0.003")])),
                lot_size=draw(steps),
                min_qty=draw(st.sampled_from([D(0), D("0.01"), D("0.5")])),
                min_notional=draw(st.sampled_from([D(0), D(5), D(50)])),
                tick_size=draw(st.sampled_from([D(0), D("0.01"), D("0.05")])),
                balance=draw(st.one_of(st.none(), st.integers(0, 1000).map(D))),
                breaker_open=draw(st.integers(0, 5)) == 0,
                rate_headroom=draw(st.sampled_from([0, 1, 1, 5])),
                enabled=draw(st.integers(0, 5)) > 0,
                score=draw(st.sampled_from([D(0), D("0.5"), D("0.9"), D(1)])),
            )
    return books, conditions


orders = st.builds(
    OrderSpec,
    symbol=st.just(SYMBOL),
    side=st.sampled_from(["buy", "sell"]),
    type=st.just("market"),
    quantity=st.integers(min_value=1, max_value=2000).map(lambda n: D(n) / 100),
) | st.builds(
    OrderSpec,
    symbol=st.just(SYMBOL),
    side=st.sampled_from(["buy", "sell"]),
    type=st.just("limit"),
    quantity=st.integers(min_value=1, max_value=2000).map(lambda n: D(n) / 100),
    limit_price=prices,
    time_in_force=st.sampled_from(["GTC", "IOC", "FOK"]),
)


def within_limit(order: OrderSpec, child: Child) -> bool:
    if order.limit_price is None:
        return True
    if order.side == "buy":
        return child.price <= order.limit_price
    return child.price >= order.limit_price


@settings(max_examples=300, deadline=None)
@given(order=orders, setup=venue_setups())
def test_plan_properties(order: OrderSpec, setup) -> None:
    books, conditions = setup
    p = plan(order, books, conditions, NOW)
    # never more than the order, never beyond its limit
    assert sum((c.quantity for c in p.children), D(0)) <= order.quantity
    assert all(within_limit(order, c) for c in p.children)
    # each venue's lot, minimums, tick and balance hold; one child per venue at most
    assert len({c.venue for c in p.children}) == len(p.children)
    for c in p.children:
        vc = conditions[c.venue]
        assert c.quantity > 0
        if vc.lot_size:
            assert c.quantity % vc.lot_size == 0
        if vc.tick_size:
            assert c.price % vc.tick_size == 0
        assert c.quantity >= vc.min_qty
        assert c.price * c.quantity >= vc.min_notional
        if vc.balance is not None:
            spend = c.price * c.quantity if order.side == "buy" else c.quantity
            assert spend <= vc.balance
    # every venue in conditions (and every book) appears exactly once, with a reason
    names = [d.venue for d in p.venues]
    assert len(names) == len(set(names))
    assert set(conditions) | {b.venue for b in books} == set(names)
    routed = {c.venue: c.quantity for c in p.children}
    for d in p.venues:
        assert d.reason
        assert d.quantity == routed.get(d.venue, D(0))
    # no children, no rest venue, a NO_ROUTE naming every venue when nothing may trade
    if p.unroutable is not None:
        assert p.children == () and p.rest_venue is None
        assert all(f"{n} " in p.unroutable for n in names)
    if order.time_in_force == "FOK" and p.children:
        assert sum(c.quantity for c in p.children) == order.quantity


@settings(max_examples=150, deadline=None)
@given(order=orders, setup=venue_setups())
def test_no_venue_gets_more_than_its_book_offers_within_the_limit(order, setup) -> None:
    books, conditions = setup
    p = plan(order, books, conditions, NOW)
    by_venue = {b.venue: b for b in books}
    for c in p.children:
        book = by_venue[c.venue]
        levels = book.asks if order.side == "buy" else book.bids
        limit = order.limit_price
        if limit is not None:
            levels = [
                (p, q) for p, q in levels if (p <= limit if order.side == "buy" else p >= limit)
            ]
        assert c.quantity <= sum(q for _, q in levels)
        assert c.quantity <= decision(p, c.venue).available


@st.composite
def plain_venues(draw):
    """Venues without lots, minimums, balances or penalties: only books and fees."""
    books, conditions = [], {}
    for name in VENUES[: draw(st.integers(1, 4))]:
        asks = sorted(draw(st.lists(prices, min_size=1, max_size=6, unique=True)))
        books.append(
            VenueBook(
                venue=name,
                symbol=SYMBOL,
                state=MdState.LIVE,
                asks=[(p, draw(quantities)) for p in asks],
                ts=NOW,
            )
        )
        fee = draw(st.sampled_from([D(0), D("0.0005"), D("0.001"), D("0.003")]))
        conditions[name] = VenueCondition(venue=name, taker_fee=fee)
    return books, conditions


@settings(max_examples=200, deadline=None)
@given(setup=plain_venues(), quantity=quantities)
def test_routed_cost_is_never_above_any_single_venue_that_could_fill_it(setup, quantity):
    """The sweep by fee-adjusted price is the cheapest way to buy: no single venue deep
    enough for the whole order costs less, fees included."""
    books, conditions = setup
    p = plan(buy(str(quantity)), books, conditions, NOW)

    def cost(book, qty, up_to=None):
        left, total = qty, D(0)
        for price, size in book.asks:
            if left <= 0 or (up_to is not None and price > up_to):
                break
            take = min(size, left)
            left -= take
            total += take * price * (1 + conditions[book.venue].taker_fee)
        return total, qty - left

    by_venue = {b.venue: b for b in books}
    routed = D(0)
    for c in p.children:
        spent, filled = cost(by_venue[c.venue], c.quantity, c.price)
        assert filled == c.quantity  # the pinned price covers the planned share
        routed += spent
    deep_enough = sum(q for b in books for _, q in b.asks) >= quantity
    assert p.routed == (quantity if deep_enough else sum(q for b in books for _, q in b.asks))
    for book in books:
        spent, filled = cost(book, quantity)
        if filled == quantity:
            assert routed <= spent
