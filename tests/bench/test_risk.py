"""The risk benchmark helpers ``make bench`` calls (``bench/risk.py``; the drill itself runs
in tests/system/test_killswitch.py)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from bench import risk as bench_risk


def test_bench_risk_eval_reports_microseconds():
    result = bench_risk.bench_risk_eval(n=500)
    assert set(result) == {"risk_eval_p50_us", "risk_eval_p99_us", "risk_eval_n"}
    assert 0 < result["risk_eval_p50_us"] <= result["risk_eval_p99_us"]


def test_drill_orders_are_distinct_and_rest_below_the_market():
    orders = bench_risk._drill_orders("x", 500)
    assert len({(o["symbol"], o["price"]) for o in orders}) == 500
    assert {o["symbol"] for o in orders} == set(bench_risk.DRILL_BOOKS)
    assert all(D(o["price"]) < (60000 if o["symbol"] == "BTC/USDT" else 3000) for o in orders)


@pytest.mark.django_db
def test_allow_load_test_lets_a_burst_of_identical_orders_through(ref, submit):
    for _ in range(3):
        assert submit()[1] == []
    assert [r["check"] for r in submit()[1]] == ["DUPLICATE_ORDER"]
    bench_risk.allow_load_test("DEMO")
    for _ in range(5):
        assert submit()[1] == []
