"""The replay benchmark (``bench/replay.py``), small: its keys, the ratio over the parse
floor of the same run, and the speed headroom against the recording's own time."""

from __future__ import annotations

from backtest.synth import SynthConfig, write_recording
from bench.replay import bench_replay


def test_bench_replay_reports_rate_floor_ratio_and_speed_headroom(tmp_path):
    path = tmp_path / "btcusdt.gz"
    write_recording(path, SynthConfig(minutes=0.2, seed=2))

    result = bench_replay(repeat=1, paths=[path])

    assert result["replay_events"] > 500
    assert 0 < result["replay_events_per_s"] and 0 < result["replay_floor_events_per_s"]
    ratio = result["replay_events_per_s"] / result["replay_floor_events_per_s"]
    assert abs(result["replay_ratio"] - ratio) < 0.01
    assert result["replay_max_speed"] > 1  # faster than the market it replays
