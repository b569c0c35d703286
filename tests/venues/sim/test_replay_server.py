"""``python -m venues.sim --replay FILE`` over real HTTP: the simulator's book is the
backtester's book of the recording at the moment the replay stands at, an order takes recorded liquidity
through ccxt as on a real venue, and the WebSocket streams publish the replayed book.

One simulator process for the module, on a synthetic recording the test writes (no
third-party data)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import ccxt
import pytest
import requests

from backtest.data import Depth, Snapshot, Ticker, Trade, iter_events
from backtest.synth import SynthConfig, write_recording
from backtest.venue import SourceBook
from tests.venues.sim.conftest import API_KEY, API_SECRET, CCXT_OPTIONS

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[3]


class Replaying:
    def __init__(self, proc: subprocess.Popen[str], port: int, recording: Path) -> None:
        self.proc, self.port, self.recording = proc, port, recording
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, **params: Any) -> Any:
        r = requests.get(self.base + path, params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def market(self, **body: Any) -> Any:
        r = requests.post(self.base + "/sim/market", json=body, timeout=10)
        return r.status_code, r.json()


@pytest.fixture(scope="module")
def replaying(tmp_path_factory) -> Iterator[Replaying]:
    recording = tmp_path_factory.mktemp("replay") / "btcusdt_synth.gz"
    write_recording(recording, SynthConfig(symbol="BTC/USDT", minutes=1, seed=21))
    proc = subprocess.Popen(
        [sys.executable, "-m", "venues.sim", "--name", "sim-replay", "--port", "0",
         "--api-key", API_KEY, "--api-secret", API_SECRET,
         "--replay", str(recording), "--speed", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, line + (
        proc.stderr.read() if proc.stderr else ""
    )
    port = int(line.split("http://127.0.0.1:")[1].split()[0])
    sim = Replaying(proc, port, recording)
    try:
        deadline = time.monotonic() + 30
        while sim.get("/sim/state", depth=1)["market"]["replay"]["events"] < 800:
            assert time.monotonic() < deadline, "the replay does not advance"
            time.sleep(0.2)
        yield sim
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        err = proc.stderr.read() if proc.stderr else ""
        assert "Traceback" not in err, err
        for f in (proc.stdout, proc.stderr):
            if f:
                f.close()


def recorded_book(recording: Path, n_events: int) -> tuple[SourceBook, set[D]]:
    """The book the backtester sees after the first ``n_events`` of the recording (snapshot
    and diffs, the newest ticker over the top), and the prices recorded trades touched
    since the last book update (the simulator is ahead there: the replayed trade took from
    those levels; the next ticker or diff records it)."""
    book = SourceBook("BTCUSDT")
    touched: set[D] = set()
    for i, ev in enumerate(iter_events([recording])):
        if i >= n_events:
            break
        if isinstance(ev, Trade):
            touched.add(ev.price)
            continue
        if isinstance(ev, Snapshot):
            book.on_snapshot(ev)
        elif isinstance(ev, Depth):
            book.on_depth(ev)
        elif isinstance(ev, Ticker):
            book.on_ticker(ev)
        touched.clear()
    return book, touched


def test_replay_when_paused_then_the_book_is_the_recordings_book_at_that_moment(replaying):
    # Arrange: stop the replay where it stands
    code, market = replaying.market(paused=True)
    assert code == 200 and market["paused"]
    # Act
    state = replaying.get("/sim/state", depth=5000)
    rest = replaying.get("/api/v3/depth", symbol="BTCUSDT", limit=5000)
    # Assert
    replay = state["market"]["replay"]
    assert replay["issues"] == 0 and replay["books"] == {"BTCUSDT": "LIVE"}
    book, touched = recorded_book(replaying.recording, replay["events"])
    sim = {
        side: {D(p): D(q) for p, q in state["books"]["BTCUSDT"][side]} for side in ("bids", "asks")
    }
    for side, recorded in (("bids", dict(book.levels(True))), ("asks", dict(book.levels(False)))):
        for price in set(recorded) | set(sim[side]):
            if price in touched:  # a replayed trade took from it since the last book update
                assert sim[side].get(price, D(0)) <= recorded.get(price, D(0)), (side, price)
            else:
                assert sim[side].get(price) == recorded.get(price), (side, price)
    assert len(sim["bids"]) > 300 and len(sim["asks"]) > 300
    # the REST depth is the same book
    assert [[D(p), D(q)] for p, q in rest["bids"][:50]] == [
        [D(p), D(q)] for p, q in state["books"]["BTCUSDT"]["bids"][:50]
    ]
    # the market cannot be told a mid: it follows the recording
    code, body = replaying.market(mid={"BTC/USDT": "1000"})
    assert code == 400 and "follows a recording" in body["error"]


def test_market_buy_through_ccxt_when_replaying_then_it_walks_the_recorded_asks(replaying):
    # Arrange: paused, so the book does not move between reading it and trading
    replaying.market(paused=True)
    ex = ccxt.binance(
        {"apiKey": API_KEY, "secret": API_SECRET, "enableRateLimit": False, "timeout": 10_000,
         "options": dict(CCXT_OPTIONS)}
    )  # fmt: skip
    api = replaying.base + "/api/v3"
    ex.urls["api"] = {**ex.urls["api"], "public": api, "private": api}
    asks = replaying.get("/api/v3/depth", symbol="BTCUSDT", limit=5)["asks"]
    (p0, q0), (p1, q1) = [(D(p), D(q)) for p, q in asks[:2]]
    qty = q0 + (q1 / 2).quantize(D("0.00001"))
    # Act
    order = ex.create_order("BTC/USDT", "market", "buy", float(qty))
    # Assert: all of the best ask, then part of the next level, at the recorded prices
    fills = [(D(str(t["price"])), D(str(t["amount"]))) for t in order["trades"]]
    assert fills == [(p0, q0), (p1, qty - q0)]
    after = replaying.get("/api/v3/depth", symbol="BTCUSDT", limit=1)["asks"][0]
    assert (D(after[0]), D(after[1])) == (p1, q1 - (qty - q0))
    req = replaying.get("/sim/requests", kind="new")["requests"][-1]
    assert req["outcome"] == "accepted" and req["order_status"] == "FILLED"


def test_streams_when_replaying_then_depth_diffs_follow_the_recording(replaying):
    async def first_diffs() -> list[dict[str, Any]]:
        url = f"ws://127.0.0.1:{replaying.port}/ws/btcusdt@depth@100ms"
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            replaying.market(paused=False)
            out = []
            while len(out) < 3:
                msg = await asyncio.wait_for(ws.receive(), 10)
                out.append(json.loads(msg.data))
            return out

    before = replaying.get("/sim/state", depth=1)["market"]["replay"]["events"]
    diffs = asyncio.run(first_diffs())
    assert all(d["e"] == "depthUpdate" and d["s"] == "BTCUSDT" for d in diffs)
    assert [d["U"] for d in diffs[1:]] == [d["u"] + 1 for d in diffs[:-1]]  # no gap
    assert replaying.get("/sim/state", depth=1)["market"]["replay"]["events"] > before
