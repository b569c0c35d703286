"""venues/sim/replay.py: the simulated exchange's house liquidity follows a recording.

In process, with the matching engine and an injected clock: the engine's book equals the
book the recording rebuilds; user orders take recorded liquidity (walking the book) and
rest behind the recorded quantity ahead of them; recorded trades fill them only past it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from backtest.data import Depth, Snapshot, Ticker, Trade, iter_events
from backtest.synth import SynthConfig, write_recording
from backtest.venue import SourceBook
from venues.sim.engine import BUY, GTC, LIMIT, MARKET, SELL, MatchingEngine
from venues.sim.replay import ReplayConfig, ReplayMarket, unified_symbol
from venues.sim.server import default_symbol

D = Decimal
T0 = 1_700_000_000_000_000_000  # ns
MS = 1_000_000


class Clock:
    def __init__(self) -> None:
        self.ms = T0 // MS

    def __call__(self) -> int:
        return self.ms


def feed(path: Path, lines: list[tuple[int, dict]]) -> Path:
    """A recorded feed: (ms after T0, message) per line."""
    path.write_text("".join(f"{T0 + ms * MS} {json.dumps(msg)}\n" for ms, msg in lines))
    return path


def diff(u_from: int, u_to: int, bids=(), asks=()) -> dict:
    return {
        "stream": "btcusdt@depth@100ms",
        "data": {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": u_from, "u": u_to,
                 "b": [list(x) for x in bids], "a": [list(x) for x in asks]},
    }  # fmt: skip


def trade(price: str, qty: str, aggressor: str) -> dict:
    return {
        "stream": "btcusdt@trade",
        "data": {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 1, "p": price, "q": qty, "T": 1,
                 "m": aggressor == "sell", "M": True},
    }  # fmt: skip


TICKER = {"stream": "btcusdt@bookTicker",
          "data": {"u": 10, "s": "BTCUSDT", "b": "100", "B": "1", "a": "101", "A": "1"}}  # fmt: skip
SNAPSHOT = {
    "lastUpdateId": 10,
    "bids": [["100.00", "1.0"], ["99.00", "2.0"]],
    "asks": [["101.00", "0.1"], ["102.00", "0.2"], ["103.00", "5.0"]],
}


def engine_and_market(path: Path, **replay: object) -> tuple[MatchingEngine, ReplayMarket, Clock]:
    clock = Clock()
    engine = MatchingEngine([default_symbol("BTC/USDT").instrument], clock, maker_fee=D(0),
                            taker_fee=D(0))  # fmt: skip
    engine.add_account("user", {"USDT": D("1000000"), "BTC": D("100")})
    market = ReplayMarket(engine, ReplayConfig((path,), **replay))  # type: ignore[arg-type]
    return engine, market, clock


def test_unified_symbol_when_exchange_id_then_base_and_quote():
    assert unified_symbol("BTCUSDT") == "BTC/USDT"
    assert unified_symbol("ethbtc") == "ETH/BTC"
    with pytest.raises(ValueError, match="XYZ"):
        unified_symbol("XYZ")


def test_replay_when_synthetic_recording_then_engine_book_equals_the_backtesters_book(tmp_path):
    # Arrange: a synthetic half minute, and the book the backtester sees in it
    # (backtest.venue.SourceBook: snapshot and diffs, the newest ticker over the top)
    path = tmp_path / "btc.gz"
    write_recording(path, SynthConfig(minutes=0.5, seed=11))
    engine, market, _ = engine_and_market(path)
    events = list(iter_events([path]))
    book = SourceBook("BTCUSDT")
    checked = 0
    for i, ev in enumerate(events):
        if isinstance(ev, Snapshot):
            book.on_snapshot(ev)
        elif isinstance(ev, Depth):
            book.on_depth(ev)
        elif isinstance(ev, Ticker):
            book.on_ticker(ev)
        if i % 31 or isinstance(ev, Trade) or not book.book.in_sync:
            continue  # right after a trade the engine is ahead until the ticker that follows
        # Act
        market.advance_to(ev.ts_ns)
        # Assert: every level, both sides
        bids, asks = engine.depth("BTCUSDT", 5000)
        assert bids == list(book.levels(True)) and asks == list(book.levels(False)), i
        assert market.mid("BTCUSDT") == (book.best_bid()[0] + book.best_ask()[0]) / 2
        checked += 1
    assert checked > 30 and market.status()["issues"] == 0


def test_market_buy_when_replaying_then_walks_the_recorded_asks_and_the_next_diff_restores_them(
    tmp_path,
):
    # Arrange
    path = feed(
        tmp_path / "f.txt",
        [(0, TICKER), (1, SNAPSHOT), (200, diff(11, 11, bids=[("99.00", "2.5")]))],
    )
    engine, market, _ = engine_and_market(path)
    market.advance_to(T0 + 100 * MS)
    # Act: a market buy larger than the best ask
    order = engine.place_order("user", "BTCUSDT", BUY, MARKET, quantity=D("0.25"))
    # Assert: 0.1 at 101, then 0.15 at 102 (slippage)
    assert [(f.price, f.qty) for f in order.fills] == [
        (D("101.00"), D("0.1")),
        (D("102.00"), D("0.15")),
    ]
    assert engine.depth("BTCUSDT", 1)[1] == [(D("102.00"), D("0.05"))]
    # a recorded diff that does not touch the asks leaves them; the recording has no impact
    # to remember, so a snapshot-based resync (or a diff of the level) brings them back
    market.advance_to(T0 + 300 * MS)
    assert engine.depth("BTCUSDT", 5)[0][0] == (D("100.00"), D("1.0"))
    assert engine.depth("BTCUSDT", 5)[0][1] == (D("99.00"), D("2.5"))


def test_resting_bid_when_recorded_sells_trade_then_filled_only_past_the_quantity_ahead(tmp_path):
    # Arrange: 1.0 recorded at 100 ahead of our 0.5 bid
    path = feed(
        tmp_path / "f.txt",
        [
            (0, TICKER),
            (1, SNAPSHOT),
            (100, trade("100.00", "0.8", "sell")),  # takes 0.8 of the 1.0 ahead
            (200, diff(11, 12, bids=[("100.00", "0.2")])),  # as recorded after that trade
            (300, trade("100.00", "0.5", "sell")),  # 0.2 ahead, then 0.3 of ours
        ],
    )
    engine, market, _ = engine_and_market(path)
    market.advance_to(T0 + 50 * MS)
    ours = engine.place_order("user", "BTCUSDT", BUY, LIMIT, quantity=D("0.5"), price=D("100.00"),
                              time_in_force=GTC)  # fmt: skip
    # Act / Assert
    market.advance_to(T0 + 250 * MS)
    assert ours.executed_qty == 0
    market.advance_to(T0 + 400 * MS)
    assert ours.executed_qty == D("0.3")
    assert engine.depth("BTCUSDT", 1)[0] == [(D("100.00"), D("0.2"))]  # what is left of ours


def test_level_when_it_grows_then_behind_us_and_when_it_shrinks_then_newest_house_goes_first(
    tmp_path,
):
    # Arrange: 1.0 recorded at 100, our 0.5 behind it; the level grows to 1.5 (0.5 more,
    # behind us), then shrinks to 0.4: the newest house 0.5 goes, then 0.6 of the first
    path = feed(
        tmp_path / "f.txt",
        [
            (0, TICKER),
            (1, SNAPSHOT),
            (100, diff(11, 11, bids=[("100.00", "1.5")])),
            (200, diff(12, 12, bids=[("100.00", "0.4")])),
            (300, trade("100.00", "0.6", "sell")),
        ],
    )
    engine, market, _ = engine_and_market(path)
    market.advance_to(T0 + 50 * MS)
    ours = engine.place_order("user", "BTCUSDT", BUY, LIMIT, quantity=D("0.5"), price=D("100.00"),
                              time_in_force=GTC)  # fmt: skip
    market.advance_to(T0 + 150 * MS)
    assert engine.depth("BTCUSDT", 1)[0] == [(D("100.00"), D("2.0"))]
    # Act
    market.advance_to(T0 + 250 * MS)
    assert engine.depth("BTCUSDT", 1)[0] == [(D("100.00"), D("0.9"))]  # 0.4 house + ours
    market.advance_to(T0 + 350 * MS)
    # Assert: 0.4 was ahead of us, so the 0.6 sell fills 0.2 of ours
    assert ours.executed_qty == D("0.2")


def test_recorded_level_when_it_crosses_a_resting_order_then_trades_with_it(tmp_path):
    # Arrange: our ask at 101.50 inside the spread; the recorded bids rise to 101.50
    path = feed(
        tmp_path / "f.txt",
        [
            (0, TICKER),
            (1, SNAPSHOT),
            (100, diff(11, 11, bids=[("101.50", "0.3")], asks=[("101.00", "0")])),
        ],  # fmt: skip
    )
    engine, market, _ = engine_and_market(path)
    market.advance_to(T0 + 50 * MS)
    ours = engine.place_order("user", "BTCUSDT", SELL, LIMIT, quantity=D("0.2"), price=D("101.50"),
                              time_in_force=GTC)  # fmt: skip
    # Act
    market.advance_to(T0 + 150 * MS)
    # Assert: we were the maker; the recorded bid keeps what we did not fill
    assert ours.executed_qty == D("0.2")
    assert engine.depth("BTCUSDT", 1)[0] == [(D("101.50"), D("0.1"))]


def test_step_when_clock_moves_then_replay_time_follows_at_speed_and_stands_still_on_hold(tmp_path):
    path = feed(
        tmp_path / "f.txt",
        [(0, TICKER), (1, SNAPSHOT), (1000, diff(11, 11, bids=[("100.00", "3")]))],
    )
    engine, market, clock = engine_and_market(path, speed=2.0)
    # the replay starts where the recording has a book (its snapshot): before any step
    assert engine.depth("BTCUSDT", 1)[0] == [(D("100.00"), D("1.0"))]
    market.step(clock())
    clock.ms += 400  # 800 ms of recording
    market.step(clock())
    assert engine.depth("BTCUSDT", 1)[0] == [(D("100.00"), D("1.0"))]
    clock.ms += 5_000
    market.hold(clock())  # paused: no replay time passes
    market.step(clock())
    assert engine.depth("BTCUSDT", 1)[0] == [(D("100.00"), D("1.0"))]
    clock.ms += 150  # 300 ms more: past the diff at 1000 ms
    market.step(clock())
    assert engine.depth("BTCUSDT", 1)[0] == [(D("100.00"), D("3"))]


def test_end_of_recording_when_loop_then_starts_again_else_finished(tmp_path):
    lines = [(0, TICKER), (1, SNAPSHOT), (100, diff(11, 11, bids=[("100.00", "3")]))]
    path = feed(tmp_path / "f.txt", lines)
    engine, once, _ = engine_and_market(path)
    once.advance_to(T0 + 10_000 * MS)
    assert once.status()["finished"] and once.status()["loops"] == 0
    engine, looped, _ = engine_and_market(path, loop=True)
    looped.advance_to(T0 + 200 * MS)  # past the last line: the recording starts again
    status = looped.status()
    assert status["loops"] == 1 and not status["finished"]
    assert engine.depth("BTCUSDT", 1)[0] == [(D("100.00"), D("3"))]  # until its first events
    looped.advance_to(T0 + 50 * MS)  # replay time is the recording's own, from its start
    assert engine.depth("BTCUSDT", 1)[0] == [(D("100.00"), D("1.0"))]  # its snapshot again


def test_replay_when_no_snapshot_and_loop_then_priming_stops(tmp_path):
    path = feed(tmp_path / "f.txt", [(100, diff(11, 11, bids=[("100.00", "3")]))])
    engine, market, _ = engine_and_market(path, loop=True)
    assert market.status()["books"] == {"BTCUSDT": "RESYNCING"}
    assert engine.depth("BTCUSDT", 1) == ([], [])


def test_replay_when_the_market_is_told_a_mid_then_clear_refusal(tmp_path):
    path = feed(tmp_path / "f.txt", [(0, TICKER), (1, SNAPSHOT)])
    _, market, _ = engine_and_market(path)
    with pytest.raises(ValueError, match="follows a recording"):
        market.set_mid("BTCUSDT", D("1"))
    with pytest.raises(ValueError, match="speed must be > 0"):
        ReplayConfig((path,), speed=0)
