"""``bench.ws`` (a ``make bench`` section) runs against the real stack: small
numbers here, only to prove it measures and loses nothing."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.system


def test_bench_ws_against_the_stack_then_latencies_and_lossless_fan_out(stack):
    from bench.ws import bench_ws

    result = bench_ws(stack, n_fills=10, clients=3, n_events=300)
    assert result["fill_to_ws_failed_orders"] == 0, result["fill_to_ws_first_failure"]
    assert result["fill_to_ws_n"] == 10
    assert 0 < result["fill_to_ws_p50_ms"] <= result["fill_to_ws_p99_ms"] < 5000
    assert 0 < result["commit_to_ws_p50_ms"] <= result["fill_to_ws_p50_ms"] + 2
    assert result["ws_lost_events"] == 0
    assert result["ws_events_per_s"] > 100
    assert result["ws_deliveries_per_s"] == pytest.approx(3 * result["ws_events_per_s"], rel=0.01)
