"""Recording the handler's feed in the binance-spot format, and replaying it through the
book builder: the replayed book is the book the handler had."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from pathlib import Path

import pytest
import requests

from marketdata.book import L2Book, MdState, Outcome
from marketdata.feed import VenueFeed
from marketdata.recorder import record_exchange
from tests.marketdata.test_book import diff_of
from tests.marketdata.test_feed import spec_for, until
from tests.venues.sim.conftest import SimThread, make_config

pytestmark = pytest.mark.timeout(90)


def test_recorded_feed_replays_to_the_same_book_with_a_snapshot_after_each_resync(
    tmp_path: Path,
) -> None:
    from omsweb.redis_client import client

    runner = SimThread(make_config(market_paused=False))
    sim = runner.start()
    name = f"t-{uuid.uuid4().hex[:8]}"
    spec = spec_for(sim.port, name, interval_s=1.0)
    spec.exchange = record_exchange(spec.exchange, tmp_path / name)
    holder: dict[str, L2Book] = {}

    def admin(path: str, body: dict) -> None:
        requests.post(f"{sim.base}{path}", json=body, timeout=5).raise_for_status()

    async def main() -> None:
        stop = asyncio.Event()
        changes: list[tuple[str, str]] = []
        feed = VenueFeed(spec, client(), lambda f, prev: changes.append((prev, f.state)))
        task = asyncio.create_task(feed.run(stop))
        f = feed.feeds["BTC/USDT"]
        try:
            await until(lambda: f.state == MdState.LIVE, 10, "LIVE")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(admin, "/sim/streams", {"paused": True})
            await asyncio.sleep(0.5)
            await asyncio.to_thread(admin, "/sim/streams", {"paused": False})
            resynced = (MdState.RESYNCING, MdState.LIVE)
            await until(lambda: resynced in changes and f.state == MdState.LIVE, 10, "resynced")
            await asyncio.sleep(1.0)
            await asyncio.to_thread(admin, "/sim/market", {"paused": True})
            await asyncio.sleep(0.5)  # the last diffs are in
            holder["book"] = f.book
        finally:
            stop.set()
            await task

    try:
        asyncio.run(main())
    finally:
        runner.stop()
    (path,) = (tmp_path / name).glob("btcusdt_*.gz")
    lines = gzip.open(path, "rt").read().splitlines()
    messages = [json.loads(line.split(" ", 1)[1]) for line in lines]
    assert all(int(line.split(" ", 1)[0]) > 1_700_000_000 * 10**9 for line in lines)
    snapshots = [i for i, m in enumerate(messages) if "lastUpdateId" in m]
    assert len(snapshots) == 2  # at the start, and after the resync
    streams = {m["stream"] for m in messages if "stream" in m}
    assert streams == {"btcusdt@depth@100ms", "btcusdt@trade"}
    replayed = L2Book("BTCUSDT")
    outcomes = []
    for m in messages:
        if "lastUpdateId" in m:
            outcomes.append(replayed.apply_snapshot(m["bids"], m["asks"], m["lastUpdateId"]))
        elif m["stream"].endswith("@depth@100ms"):
            outcomes.append(replayed.apply_diff(diff_of(m["data"])))
    assert outcomes.count(Outcome.GAP) == 1  # the paused stream
    assert replayed.state == MdState.LIVE
    assert replayed.top(10) == holder["book"].top(10)
