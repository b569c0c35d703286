"""Backtest benchmark for ``make bench`` (``python -m bench --only backtest``).

* ``backtest_floor_events_per_s``: the recordings only read and parsed
  (``backtest.data.iter_events``), the floor of any replay;
* ``backtest_events_per_s``: the engine replaying them with a trivial strategy (a small
  market buy every 500 trades, zero latency: one book per venue); target >= 100,000;
* ``backtest_events_per_s_default_latency``: the same with the default latency model
  (the feed's view of each book is a second book, rebuilt after the feed latency);
* ``backtest_ratio``: engine / floor in the same run.

Data: the shared real recordings (``../shared/data/binance-spot``, L2 diffs, trades and
tickers of BTCUSDT and ETHUSDT) when present, else a generated recording of the same
shape (``backtest.synth``); ``backtest_data`` says which. Each figure is the best of
``repeat`` runs (the machine is shared; the best run is the least disturbed one).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "binance-spot"


def _data(tmp: Path) -> tuple[list[Path], str]:
    real = [SHARED / "btcusdt_20240808.gz", SHARED / "ethusdt_20240808.gz"]
    if all(p.exists() for p in real):
        return real, "shared binance-spot BTCUSDT+ETHUSDT"
    from backtest.synth import SynthConfig, write_recording

    path = tmp / "synthetic" / "btcusdt.gz"
    write_recording(path, SynthConfig(minutes=6.0, seed=1))
    return [path], "generated (backtest.synth, 6 minutes BTC/USDT)"


def _floor(paths: list[Path]) -> tuple[int, float]:
    from backtest.data import iter_events

    t0 = time.perf_counter()
    n = sum(1 for _ in iter_events(paths))
    return n, time.perf_counter() - t0


def _engine(paths: list[Path], latency_ms: float | None) -> tuple[int, float]:
    from backtest.runner import run

    t0 = time.perf_counter()
    result = run(
        data=paths,
        strategy="backtest.examples.buy_every:BuyEvery",
        params={"n": "500", "qty": "0.0001"},
        latency_ms=latency_ms,
        report=False,
    )
    return result.summary["events"], time.perf_counter() - t0


def bench_backtest(repeat: int = 3, paths: list[Path] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="oms-bench-bt-") as tmp:
        label = "given"
        if paths is None:
            paths, label = _data(Path(tmp))
        best: dict[str, float] = {}
        events = 0
        for _ in range(repeat):
            for key, fn in (
                ("floor", lambda: _floor(paths)),
                ("zero", lambda: _engine(paths, 0)),
                ("default", lambda: _engine(paths, None)),
            ):
                events, seconds = fn()
                best[key] = max(best.get(key, 0.0), events / seconds)
    return {
        "backtest_data": label,
        "backtest_events": events,
        "backtest_floor_events_per_s": round(best["floor"]),
        "backtest_events_per_s": round(best["zero"]),
        "backtest_events_per_s_default_latency": round(best["default"]),
        "backtest_ratio": round(best["zero"] / best["floor"], 3),
        "backtest_ratio_default_latency": round(best["default"] / best["floor"], 3),
    }
