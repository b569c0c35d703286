"""The backtest benchmark (``bench/backtest.py``), small: its keys and that the ratio is
the engine's rate over the parse floor of the same run."""

from __future__ import annotations

from bench.backtest import bench_backtest
from tests.backtest.synthetic import write_recording


def test_bench_backtest_reports_engine_floor_and_their_ratio(tmp_path):
    path = write_recording(tmp_path / "testusdt_1.txt", steps=800)

    result = bench_backtest(repeat=1, paths=[path])

    assert result["backtest_events"] == 801
    assert 0 < result["backtest_events_per_s"] and 0 < result["backtest_floor_events_per_s"]
    ratio = result["backtest_events_per_s"] / result["backtest_floor_events_per_s"]
    assert abs(result["backtest_ratio"] - ratio) < 0.01  # one repetition: its own ratio
    cpu = result["backtest_events_per_s_cpu"] / result["backtest_floor_events_per_s_cpu"]
    assert abs(result["backtest_ratio_cpu"] - cpu) < 0.01
    assert 0 < result["backtest_events_per_s_default_latency_cpu"]
