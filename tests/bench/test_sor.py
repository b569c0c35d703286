"""The router benchmarks ``make bench`` runs (``bench/sor.py``), small: their keys, that
the books are the demo venues' own, and that the fill walk the improvement figure uses
is what the simulated venue's matching engine does with the same IOC child."""

from __future__ import annotations

from decimal import Decimal as D

from bench import sor as bench_sor
from routing.sor import OrderSpec, plan


def test_bench_sor_plan_reports_microseconds_for_5_venues_of_50_levels():
    books, conditions = bench_sor.synthetic_books()
    assert len(books) == 5 and all(len(b.asks) == len(b.bids) == 50 for b in books)
    result = bench_sor.bench_sor_plan(n=200)
    assert set(result) == {"sor_plan_p50_us", "sor_plan_p99_us", "sor_plan_n"}
    assert 0 < result["sor_plan_p50_us"] <= result["sor_plan_p99_us"]


def test_bench_sor_plan_orders_split_across_venues():
    books, conditions = bench_sor.synthetic_books()
    big = plan(OrderSpec("BTC/USDT", "buy", "market", D(25)), books, conditions, bench_sor.NOW)
    assert len(big.children) >= 2


def test_improvement_is_never_negative_and_covers_every_size():
    result = bench_sor.bench_sor_improvement(samples=10)
    assert result["sor_improvement_orders"] == 10 * 2 * len(bench_sor.SIZES)
    assert result["sor_improvement_bps"] >= 0
    for size in bench_sor.SIZES:
        assert result[f"sor_improvement_bps_{size}btc"] >= 0


def test_demo_venues_are_configured_as_oms_up_starts_them():
    a, b = bench_sor.DemoVenue("sim-a"), bench_sor.DemoVenue("sim-b")
    a.step(bench_sor.START_MS)
    b.step(bench_sor.START_MS)
    assert (a.taker_fee, b.taker_fee) == (D("0.001"), D("0.0009"))
    book_a, book_b = a.book(0.0), b.book(0.0)
    # sim-b quotes a wider spread (8 ticks against 2) and twice the depth
    spread_a = book_a.asks[0][0] - book_a.bids[0][0]
    spread_b = book_b.asks[0][0] - book_b.bids[0][0]
    assert spread_a == D("0.02") and spread_b == D("0.08")
    assert sum(q for _, q in book_b.asks) > sum(q for _, q in book_a.asks)


def test_fill_walk_matches_the_sim_matching_engine_for_an_ioc_child():
    from venues.sim.engine import BUY, IOC, LIMIT

    venue = bench_sor.DemoVenue("sim-a")
    venue.step(bench_sor.START_MS)
    book = venue.book(bench_sor.START_MS / 1000)
    limit = book.asks[2][0]  # three levels deep
    quantity = sum(q for _, q in book.asks[:2]) + D("0.1")
    qty, quote = bench_sor.fill(book.asks, quantity, limit, buy=True)
    venue.engine.add_account("bench", {"USDT": D(10_000_000), "BTC": D(0)})
    order = venue.engine.place_order(
        "bench",
        venue.instrument.symbol,
        BUY,
        LIMIT,
        quantity=quantity,
        price=limit,
        time_in_force=IOC,
    )
    assert order.executed_qty == qty == quantity
    assert order.cummulative_quote_qty == quote
