"""The speed work on the reader, the book and the engine (issue 16, ``backtest_events_per_s``)
must not change a single result: the example strategies on the shared real recordings,
with a fixed seed, write byte for byte the files they wrote before it (digests taken with
the code of commit 0f977e6, before the speed work). A digest changes only with a change
of behaviour: if one is intended, say so in the commit and take the new digests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from backtest.runner import run

from .conftest import SHARED, needs_shared

FILES = ("summary.json", "orders.csv", "fills.csv", "latency.csv", "series.csv")

CASES = {
    # a market buy every 500 trades with the default latency model (a second, late book)
    "buy_every_default_latency": (
        "backtest.examples.buy_every:BuyEvery",
        {"n": "500", "qty": "0.0001"},
        None,
        "04099b20ae109c750586cf482e092d6efc531adc6f95455e58edce78adc3bc37",
    ),
    # resting quotes (queue positions, cancels, amends), reading the book on every event
    "market_maker_zero_latency": (
        "backtest.examples.market_maker:MarketMaker",
        {"symbol": "BTCUSDT", "qty": "0.001"},
        0.0,
        "4345bb3064e239d1fe1cab46452dfb6f6f6d2c81a46f1b33d7202322b6d3f2ad",
    ),
}


def digest(out: Path) -> str:
    """Of the output files, the summary without its wall-clock figures."""
    h = hashlib.sha256()
    for name in FILES:
        data = (out / name).read_bytes()
        if name == "summary.json":
            summary = json.loads(data)
            del summary["events_per_s"], summary["timing"]
            data = json.dumps(summary, sort_keys=True).encode()
        h.update(name.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def run_case(case: str, out: Path) -> str:
    strategy, params, latency, _ = CASES[case]
    run(
        data=[SHARED / "btcusdt_20240808.gz", SHARED / "ethusdt_20240808.gz"],
        strategy=strategy,
        params=dict(params),
        latency_ms=latency,
        seed=7,
        out_dir=out,
        report=False,
    )
    return digest(out)


@needs_shared
@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_identical_to_before_the_speed_work(case: str, tmp_path: Path) -> None:
    assert run_case(case, tmp_path) == CASES[case][3]
