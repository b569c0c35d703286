"""The consolidated book and risk's reference price (pure)."""

from __future__ import annotations

from decimal import Decimal as D

from marketdata.book import MdState
from marketdata.consolidated import VenueBook, consolidate, reference

NOW = 1_000_000.0


def vb(venue: str, bids, asks, *, state=MdState.LIVE, age=0.1, fee="0.001", interval=2.0):
    return VenueBook(
        venue=venue,
        symbol="BTC/USDT",
        state=state,
        bids=[(D(p), D(q)) for p, q in bids],
        asks=[(D(p), D(q)) for p, q in asks],
        ts=NOW - age,
        interval_s=interval,
        taker_fee=D(fee),
    )


def test_levels_of_live_venues_merge_by_price_with_venue_fee_adjusted_price_and_age() -> None:
    a = vb("sim-a", [("100.0", "1"), ("99.9", "2")], [("100.2", "1")], fee="0.001", age=0.05)
    b = vb("sim-b", [("100.1", "3")], [("100.3", "1"), ("100.2", "5")], fee="0.0005", age=0.2)
    c = vb("sim-c", [("150", "1")], [("151", "1")], state=MdState.RESYNCING)
    book = consolidate("BTC/USDT", [a, b, c], NOW)
    assert book.venues == ["sim-a", "sim-b"]
    assert [(lv.venue, lv.price) for lv in book.bids] == [
        ("sim-b", D("100.1")),
        ("sim-a", D("100.0")),
        ("sim-a", D("99.9")),
    ]
    # same raw price: the cheaper venue after fees first
    assert [(lv.venue, lv.price) for lv in book.asks][:2] == [
        ("sim-b", D("100.2")),
        ("sim-a", D("100.2")),
    ]
    first = book.bids[0].to_json()
    assert first == {
        "venue": "sim-b",
        "price": "100.1",
        "fee_adjusted_price": str(D("100.1") * (1 - D("0.0005"))),
        "quantity": "3",
        "age_ms": 200,
    }
    assert book.mid == (D("100.1") + D("100.2")) / 2
    assert not book.crossed  # raw prices touch, but not net of fees


def test_crossed_net_of_fees_is_flagged() -> None:
    a = vb("sim-a", [("100.0", "1")], [("100.1", "1")], fee="0.0001")
    b = vb("sim-b", [("100.5", "1")], [("100.6", "1")], fee="0.0001")
    assert consolidate("BTC/USDT", [a, b], NOW).crossed
    same_venue_only = consolidate("BTC/USDT", [b], NOW)
    assert not same_venue_only.crossed


def test_a_live_book_not_refreshed_within_its_interval_is_stale() -> None:
    old = vb("sim-a", [("100", "1")], [("101", "1")], age=2.5, interval=2.0)
    assert old.effective_state(NOW) == MdState.STALE
    assert consolidate("BTC/USDT", [old], NOW).venues == []
    assert "sim-a BTC/USDT market data is STALE (age 2.5 s" in old.describe(NOW)


def test_reference_names_the_order_venue_when_its_book_is_not_live() -> None:
    a = vb("sim-a", [("100", "1")], [("101", "1")], state=MdState.DOWN)
    b = vb("sim-b", [("100.2", "1")], [("100.4", "1")])
    ref = reference("BTC/USDT", [a, b], "sim-a", NOW)
    assert ref.price == D("100.3") and ref.problem is not None
    assert ref.problem.startswith("sim-a BTC/USDT market data is DOWN")
    assert reference("BTC/USDT", [a, b], "sim-b", NOW).problem is None
    assert (
        reference("BTC/USDT", [a, b], "sim-z", NOW).problem == "no market data for sim-z BTC/USDT"
    )


def test_no_live_venue_falls_back_to_the_freshest_stale_mid_and_says_so() -> None:
    a = vb("sim-a", [("100", "1")], [("102", "1")], age=5.0)
    b = vb("sim-b", [("90", "1")], [("92", "1")], age=9.0)
    ref = reference("BTC/USDT", [a, b], None, NOW)
    assert ref.price == D("101") and ref.age_s == 5.0
    assert ref.problem is not None and ref.problem.startswith("no LIVE market data for BTC/USDT")
    assert reference("BTC/USDT", [], None, NOW).price is None
