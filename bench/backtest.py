"""Backtest benchmark for ``make bench`` (``python -m bench --only backtest``).

* ``backtest_floor_events_per_s``: the recordings only read and parsed
  (``backtest.data.iter_events``), the floor of any replay;
* ``backtest_events_per_s``: the engine replaying them with a trivial strategy (a small
  market buy every 500 trades, zero latency: one book per venue); target >= 100,000;
* ``backtest_events_per_s_default_latency``: the same with the default latency model
  (the feed's view of each book is a second book, rebuilt after the feed latency);
* ``backtest_ratio``: engine / floor, the median over the repetitions of runs taken
  back to back (the rates are the best of ``repeat``; the machine is shared);
* ``*_cpu``: the same rates over the process's CPU time (``time.process_time``) instead
  of the wall clock: on a loaded machine the wall-clock rates mostly measure the load
  (the same code gave 46,000 to 100,000 events/s within minutes), the CPU-time ones
  move by a few per cent.

Data: the shared real recordings (``../shared/data/binance-spot``, L2 diffs, trades and
tickers of BTCUSDT and ETHUSDT) when present, else a generated recording of the same
shape (``backtest.synth``); ``backtest_data`` says which.
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


def _floor(paths: list[Path]) -> tuple[int, float, float]:
    from backtest.data import iter_events

    t0, c0 = time.perf_counter(), time.process_time()
    n = sum(1 for _ in iter_events(paths))
    return n, time.perf_counter() - t0, time.process_time() - c0


def _engine(paths: list[Path], latency_ms: float | None) -> tuple[int, float, float]:
    from backtest.runner import run

    t0, c0 = time.perf_counter(), time.process_time()
    result = run(
        data=paths,
        strategy="backtest.examples.buy_every:BuyEvery",
        params={"n": "500", "qty": "0.0001"},
        latency_ms=latency_ms,
        report=False,
    )
    return result.summary["events"], time.perf_counter() - t0, time.process_time() - c0


def bench_backtest(repeat: int = 3, paths: list[Path] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="oms-bench-bt-") as tmp:
        label = "given"
        if paths is None:
            paths, label = _data(Path(tmp))
        rates: dict[str, list[float]] = {"floor": [], "zero": [], "default": []}
        cpu: dict[str, list[float]] = {"floor": [], "zero": [], "default": []}
        events = 0
        for _ in range(repeat):  # interleaved: each ratio compares runs of one moment
            for key, latency in (("floor", -1.0), ("zero", 0.0), ("default", None)):
                if latency is not None and latency < 0:
                    events, seconds, cpu_s = _floor(paths)
                else:
                    events, seconds, cpu_s = _engine(paths, latency)
                rates[key].append(events / seconds)
                cpu[key].append(events / max(cpu_s, 1e-9))
    ratios = sorted(z / f for z, f in zip(rates["zero"], rates["floor"], strict=True))
    ratios_default = sorted(d / f for d, f in zip(rates["default"], rates["floor"], strict=True))
    return {
        "backtest_data": label,
        "backtest_events": events,
        "backtest_floor_events_per_s": round(max(rates["floor"])),
        "backtest_events_per_s": round(max(rates["zero"])),
        "backtest_events_per_s_default_latency": round(max(rates["default"])),
        "backtest_ratio": round(ratios[len(ratios) // 2], 3),
        "backtest_ratio_default_latency": round(ratios_default[len(ratios_default) // 2], 3),
        "backtest_floor_events_per_s_cpu": round(max(cpu["floor"])),
        "backtest_events_per_s_cpu": round(max(cpu["zero"])),
        "backtest_events_per_s_default_latency_cpu": round(max(cpu["default"])),
        "backtest_ratio_cpu": round(max(cpu["zero"]) / max(cpu["floor"]), 3),
    }
