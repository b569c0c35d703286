"""backtest/synth.py: synthetic recordings read back through backtest/data.py and rebuild a
sane book with marketdata's book builder, as the real recordings do."""

from __future__ import annotations

import gzip
from collections import Counter
from decimal import Decimal

import pytest

from backtest.data import Depth, Issues, Snapshot, Ticker, Trade, iter_events
from backtest.synth import SynthConfig, write_recording
from marketdata.book import Diff, L2Book, Outcome


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "btcusdt_synth.gz"
    write_recording(path, SynthConfig(symbol="BTC/USDT", minutes=1, seed=3))
    return path


def test_recording_when_read_back_then_every_stream_and_no_issue(recording):
    # Act
    issues = Issues()
    events = list(iter_events([recording], issues=issues))
    # Assert
    assert issues.total == 0, issues.items[:5]
    kinds = Counter(type(e).__name__ for e in events)
    assert isinstance(events[0], Ticker) and isinstance(events[1], Snapshot)
    assert kinds["Snapshot"] == 1
    assert kinds["Depth"] == 600  # one diff per 100 ms for a minute
    assert 600 < kinds["Trade"] < 4_000 and kinds["Ticker"] > 1_000
    assert {e.symbol for e in events} == {"BTCUSDT"}
    assert all(a.ts_ns <= b.ts_ns for a, b in zip(events, events[1:], strict=False))
    assert len(events[1].bids) >= 300 and len(events[1].asks) >= 300


def test_recording_when_replayed_then_the_book_stays_in_sync_and_agrees_with_ticker_and_trades(
    recording,
):
    # Arrange
    book = L2Book("BTCUSDT")
    checked_tickers = checked_trades = 0
    # Act / Assert: every diff applies in sequence; the book is never crossed; a trade
    # prints at a price the book had; the tickers between diffs are the touch at its time
    for ev in iter_events([recording]):
        if isinstance(ev, Snapshot):
            assert book.apply_snapshot(ev.bids, ev.asks, ev.last_update_id) == Outcome.APPLIED
        elif isinstance(ev, Depth):
            out = book.apply_diff(Diff(ev.first_id, ev.last_id, ev.bids, ev.asks))
            assert out == Outcome.APPLIED, (out, ev.first_id)
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is not None and ask is not None and bid[0] < ask[0]
        elif isinstance(ev, Trade):
            bid, ask = book.best_bid(), book.best_ask()
            # a trade happens within the interval before the diff that shows it: near the touch
            assert bid is not None and ask is not None
            assert bid[0] * Decimal("0.99") < ev.price < ask[0] * Decimal("1.01")
            assert ev.quantity > 0 and ev.side in ("buy", "sell")
            checked_trades += 1
        elif isinstance(ev, Ticker):
            assert ev.bid_price < ev.ask_price
            checked_tickers += 1
    assert book.in_sync
    assert checked_trades > 600 and checked_tickers > 1000
    # the price moved, as a market does, but stayed plausible
    mid = book.mid()
    assert mid is not None and Decimal("54000") < mid < Decimal("66000")


def test_recording_when_same_seed_then_same_bytes_and_other_seed_differs(tmp_path):
    a, b, c = (tmp_path / f"{n}.txt" for n in "abc")
    write_recording(a, SynthConfig(minutes=0.2, seed=5))
    write_recording(b, SynthConfig(minutes=0.2, seed=5))
    write_recording(c, SynthConfig(minutes=0.2, seed=6))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_recording_when_gz_name_then_gzip_and_other_symbols_have_their_grid(tmp_path):
    path = tmp_path / "eth.gz"  # the name does not say the symbol: the streams do
    write_recording(path, SynthConfig(symbol="ETH/USDT", minutes=0.1, seed=1))
    with gzip.open(path, "rt") as fh:
        assert '"lastUpdateId"' in fh.readlines()[1]
    snap = list(iter_events([path]))[1]
    assert isinstance(snap, Snapshot) and snap.symbol == "ETHUSDT"
    assert Decimal("2000") < Decimal(snap.bids[0][0]) < Decimal("3200")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"symbol": "BTCUSDT"}, "BASE/QUOTE"),
        ({"minutes": 0}, "minutes"),
        ({"mid": Decimal(0)}, "mid"),
    ],
)
def test_config_when_invalid_then_error_names_it(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        write_recording(tmp_path / "x.txt", SynthConfig(**changes))
    assert not (tmp_path / "x.txt").exists()


def test_oms_synth_when_run_then_file_written_and_bad_symbol_is_a_clear_error(tmp_path, capsys):
    from omsweb.cli import main

    out = tmp_path / "rec" / "btcusdt.gz"
    with pytest.raises(SystemExit) as done:
        main(["synth", "--out", str(out), "--minutes", "0.1", "--seed", "4"])
    assert done.value.code == 0
    assert out.exists() and "lines, 0.1 minutes of BTC/USDT (seed 4)" in capsys.readouterr().out
    with pytest.raises(SystemExit) as bad:
        main(["synth", "--out", str(tmp_path / "y.gz"), "--symbol", "BTCUSDT"])
    assert "symbol must look like BASE/QUOTE" in str(bad.value.code)
