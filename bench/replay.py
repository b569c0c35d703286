"""Replay benchmark for ``make bench`` (``python -m bench --only replay``).

How fast the simulated exchange can follow a recording (``oms simex --replay``,
``venues/sim/replay.py``), in process: every recorded level and trade applied to the
matching engine's house liquidity, no HTTP. Measured against the floor of the same run,
the files only read and parsed.

* ``replay_events_per_s``: events applied per second (best of ``repeat``);
* ``replay_floor_events_per_s``: read and parse only (best of ``repeat``);
* ``replay_ratio``: replay / floor (median of back-to-back pairs);
* ``replay_max_speed``: how many times faster than the recording's own time the
  simulator could replay it (``--speed`` headroom on this machine, the HTTP side idle).

Data: the shared real recordings when present, else a generated one (``replay_data``).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.backtest import _data, _floor


def _replay(paths: list[Path]) -> tuple[int, float, float]:
    """(events, seconds, recorded seconds) of one full replay into a fresh engine."""
    from venues.sim.engine import MatchingEngine
    from venues.sim.replay import ReplayConfig, ReplayMarket, recorded_symbols, unified_symbol
    from venues.sim.server import default_symbol

    symbols = [unified_symbol(s) for s in recorded_symbols(paths)]
    engine = MatchingEngine([default_symbol(s).instrument for s in symbols], lambda: 0)
    t0 = time.perf_counter()
    market = ReplayMarket(engine, ReplayConfig(tuple(paths)))
    first = market.replay_ns or 0
    market.advance_to(2**62)
    took = time.perf_counter() - t0
    span = ((market.last_event_ns or first) - first) / 1e9
    return market.events, took, span


def bench_replay(repeat: int = 2, paths: list[Path] | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="oms-bench-replay-") as tmp:
        label = "given"
        if paths is None:
            paths, label = _data(Path(tmp))
        rates, floors, ratios, span = [], [], [], 0.0
        for _ in range(repeat):
            n_floor, t_floor, _cpu = _floor(paths)
            n, t, span = _replay(paths)
            floors.append(n_floor / t_floor)
            rates.append(n / t)
            ratios.append((n / t) / (n_floor / t_floor))
    best = max(rates)
    return {
        "replay_data": label,
        "replay_events": n,
        "replay_events_per_s": round(best),
        "replay_floor_events_per_s": round(max(floors)),
        "replay_ratio": round(statistics.median(ratios), 2),
        "replay_max_speed": round(best / (n / span), 1) if span else None,
    }
