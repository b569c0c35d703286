"""A venue's market-data feed against the simulated exchange over real WebSockets and
HTTP, publishing into the real Redis: LIVE, STALE, DOWN, RESYNCING and back by itself."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal as D
from typing import Any

import pytest
import requests

from marketdata.book import MdState
from marketdata.consolidated import VenueBook
from marketdata.feed import SymbolFeed, VenueFeed, VenueSpec
from marketdata.store import read_books
from tests.venues.sim.conftest import API_KEY, API_SECRET, RunningSim, SimThread, make_config
from venues.ccxt_adapter import VenueConfig, build_exchange

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def moving_sim() -> Iterator[RunningSim]:
    """A simulator whose market moves every 100 ms (a book update every publish)."""
    runner = SimThread(make_config(market_paused=False))
    running = runner.start()
    try:
        yield running
    finally:
        runner.stop()


@pytest.fixture
def redis() -> Any:
    from omsweb.redis_client import client

    return client()


def spec_for(port: int, name: str, interval_s: float = 1.0) -> VenueSpec:
    config = VenueConfig(
        name=name,
        exchange_id="binance",
        base_url=f"http://127.0.0.1:{port}",
        api_key=API_KEY,
        secret=API_SECRET,
        timeout_ms=2000,
    )
    return VenueSpec(
        name=name,
        exchange=build_exchange(config, streaming=True),
        symbols=["BTC/USDT"],
        interval_s=interval_s,
        depth=10,
        taker_fee=D("0.001"),
    )


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not {what} within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


def run_feed(
    spec: VenueSpec,
    redis: Any,
    scenario: Callable[[VenueFeed], Awaitable[None]],
    on_publish: Callable[[VenueBook], None] | None = None,
) -> list[tuple[str, str]]:
    """Run the feed while ``scenario`` acts; the state changes it went through."""
    changes: list[tuple[str, str]] = []

    def on_state(feed: SymbolFeed, previous: MdState) -> None:
        changes.append((str(previous), str(feed.state)))

    async def main() -> None:
        stop = asyncio.Event()
        feed = VenueFeed(spec, redis, on_state, on_publish)
        task = asyncio.create_task(feed.run(stop))
        try:
            await scenario(feed)
        finally:
            stop.set()
            await task

    asyncio.run(main())
    return changes


def admin(sim: RunningSim, path: str, body: dict[str, Any]) -> Any:
    return requests.post(f"{sim.base}{path}", json=body, timeout=5).json()


def test_feed_goes_live_and_publishes_the_venue_book(moving_sim: RunningSim, redis: Any) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    published: list[VenueBook] = []

    async def scenario(feed: VenueFeed) -> None:
        f = feed.feeds["BTC/USDT"]
        await until(lambda: f.state == MdState.LIVE, 10, "LIVE")
        n = len(published)
        await until(lambda: len(published) > n + 5, 5, "updating")

    spec = spec_for(moving_sim.port, name)
    changes = run_feed(spec, redis, scenario, on_publish=published.append)
    assert ("RESYNCING", "LIVE") in changes
    books = read_books(redis, ["BTC/USDT"], [name])
    assert len(books) == 1
    book = books[0]
    assert book.state == MdState.LIVE and book.source == "stream"
    assert book.best_bid is not None and book.best_ask is not None
    assert book.best_bid < book.best_ask
    assert book.seq is not None and book.exchange_ts_ms is not None
    assert len(book.bids) == 10 and book.taker_fee == D("0.001")


def test_paused_stream_goes_stale_within_3s_and_back_to_live_by_itself(
    moving_sim: RunningSim, redis: Any
) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    took: dict[str, float] = {}

    async def scenario(feed: VenueFeed) -> None:
        f = feed.feeds["BTC/USDT"]
        await until(lambda: f.state == MdState.LIVE, 10, "LIVE")
        await asyncio.to_thread(admin, moving_sim, "/sim/streams", {"paused": True})
        took["stale"] = await until(lambda: f.state == MdState.STALE, 3, "STALE")
        stale = read_books(redis, ["BTC/USDT"], [name])[0]
        assert stale.state == MdState.STALE and "no update for" in stale.reason
        await asyncio.to_thread(admin, moving_sim, "/sim/streams", {"paused": False})
        await until(lambda: f.state == MdState.LIVE, 10, "LIVE again")

    changes = run_feed(spec_for(moving_sim.port, name, interval_s=2.0), redis, scenario)
    assert took["stale"] <= 3.0
    # resumed after missed diffs: a gap, a fresh snapshot, LIVE
    assert changes[-3:] == [("LIVE", "STALE"), ("STALE", "RESYNCING"), ("RESYNCING", "LIVE")]


def test_quiet_but_confirmed_book_stays_live(sim: RunningSim, redis: Any) -> None:
    # the module's simulator has its market paused: nothing changes, nothing is sent
    name = f"t-{uuid.uuid4().hex[:8]}"

    async def scenario(feed: VenueFeed) -> None:
        f = feed.feeds["BTC/USDT"]
        await until(lambda: f.state == MdState.LIVE, 10, "LIVE")
        await asyncio.sleep(3.0)  # three intervals of silence

    changes = run_feed(spec_for(sim.port, name, interval_s=1.0), redis, scenario)
    assert ("LIVE", "STALE") not in changes
    assert read_books(redis, ["BTC/USDT"], [name])[0].state == MdState.LIVE


def test_lost_venue_goes_down_then_resyncing_then_live(redis: Any) -> None:
    runner = SimThread(make_config(market_paused=False))
    running = runner.start()
    port = running.port
    name = f"t-{uuid.uuid4().hex[:8]}"
    holder: dict[str, Any] = {"runner": runner}

    async def scenario(feed: VenueFeed) -> None:
        f = feed.feeds["BTC/USDT"]
        await until(lambda: f.state == MdState.LIVE, 10, "LIVE")
        await asyncio.to_thread(holder["runner"].stop)
        await until(lambda: f.state == MdState.DOWN, 3, "DOWN")
        down = read_books(redis, ["BTC/USDT"], [name])[0]
        assert down.state == MdState.DOWN and down.bids == [] and down.reason
        await asyncio.sleep(1.0)
        holder["runner"] = SimThread(make_config(market_paused=False, port=port))
        await asyncio.to_thread(holder["runner"].start)
        await until(lambda: f.state == MdState.LIVE, 15, "LIVE again")

    try:
        changes = run_feed(spec_for(port, name), redis, scenario)
    finally:
        holder["runner"].stop()
    assert ("LIVE", "DOWN") in changes
    after_down = changes[changes.index(("LIVE", "DOWN")) + 1 :]
    assert after_down[-2:] == [("DOWN", "RESYNCING"), ("RESYNCING", "LIVE")]


def test_venue_answering_depth_with_errors_is_never_live_and_recovers(
    moving_sim: RunningSim, redis: Any
) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    seen: dict[str, Any] = {}

    async def scenario(feed: VenueFeed) -> None:
        f = feed.feeds["BTC/USDT"]
        await until(lambda: f.state == MdState.LIVE, 10, "LIVE")
        # every /api answer a 503 from now on; a stall makes the book need a snapshot
        await asyncio.to_thread(
            admin, moving_sim, "/sim/faults", {"scope": "all", "error_rate": 1.0}
        )
        await asyncio.to_thread(admin, moving_sim, "/sim/streams", {"paused": True})
        await asyncio.sleep(0.3)
        await asyncio.to_thread(admin, moving_sim, "/sim/streams", {"paused": False})
        await until(lambda: f.state in (MdState.RESYNCING, MdState.DOWN, MdState.STALE), 5, "out")
        await asyncio.sleep(2.0)  # retries meet the errors
        seen["state"], seen["reason"] = f.state, f.reason
        seen["book"] = read_books(redis, ["BTC/USDT"], [name])[0]
        await asyncio.to_thread(admin, moving_sim, "/sim/faults", {"error_rate": 0.0})
        await until(lambda: f.state == MdState.LIVE, 15, "LIVE again")

    run_feed(spec_for(moving_sim.port, name), redis, scenario)
    assert seen["state"] != MdState.LIVE
    assert seen["book"].state != MdState.LIVE
    assert "ExchangeNotAvailable" in seen["reason"] or "503" in seen["reason"], seen["reason"]


def test_venue_without_a_stream_is_polled_over_rest(moving_sim: RunningSim, redis: Any) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"
    spec = spec_for(moving_sim.port, name)
    spec.exchange.has = {**spec.exchange.has, "watchOrderBook": False, "watchTrades": False}
    seqs: list[int] = []

    async def scenario(feed: VenueFeed) -> None:
        f = feed.feeds["BTC/USDT"]
        await until(lambda: f.state == MdState.LIVE, 10, "LIVE")
        await until(lambda: len(set(seqs)) >= 3, 10, "three polls")

    run_feed(spec, redis, scenario, on_publish=lambda b: seqs.append(b.seq or 0))
    book = read_books(redis, ["BTC/USDT"], [name])[0]
    assert book.source == "poll" and book.state == MdState.LIVE
    assert requests.get(f"{moving_sim.base}/sim/streams", timeout=5).json()["connections"] == 0


def test_stream_silent_while_the_venue_moves_is_given_up_for_rest_polling(
    moving_sim: RunningSim, redis: Any
) -> None:
    name = f"t-{uuid.uuid4().hex[:8]}"

    async def scenario(feed: VenueFeed) -> None:
        f = feed.feeds["BTC/USDT"]
        await until(lambda: f.state == MdState.LIVE, 10, "LIVE")
        await asyncio.to_thread(admin, moving_sim, "/sim/streams", {"paused": True})
        await until(lambda: f.state == MdState.STALE, 3, "STALE")
        await until(lambda: f.state == MdState.LIVE and f.source == "poll", 8, "LIVE by polling")

    try:
        changes = run_feed(spec_for(moving_sim.port, name, interval_s=1.0), redis, scenario)
    finally:
        admin(moving_sim, "/sim/streams", {"paused": False})
    assert ("LIVE", "STALE") in changes
    assert read_books(redis, ["BTC/USDT"], [name])[0].source == "poll"
