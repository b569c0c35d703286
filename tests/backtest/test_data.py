"""The recording readers: formats, the time-ordered merge, bad input with file/line/reason."""

from __future__ import annotations

import gzip
from decimal import Decimal
from pathlib import Path

import pytest

from backtest.data import (
    Bar,
    DataError,
    Depth,
    Issues,
    Snapshot,
    Source,
    Ticker,
    Trade,
    iter_events,
)

from .conftest import SHARED, needs_shared

FEED = [
    '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":5,"u":9,'
    '"b":[["99.0","1"]],"a":[["101.0","0"]]}}',
    '{"stream":"btcusdt@bookTicker","data":{"u":9,"s":"BTCUSDT","b":"99.5","B":"2","a":"100.5","A":"3"}}',
    '{"lastUpdateId":8,"bids":[["99.5","2"]],"asks":[["100.5","3"]]}',
    '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":7,"p":"100.5",'
    '"q":"0.25","T":1,"m":false,"M":true}}',
]


def write_feed(path: Path, lines: list[str], start_ns: int = 1_000, step_ns: int = 10) -> Path:
    text = "".join(f"{start_ns + i * step_ns} {line}\n" for i, line in enumerate(lines))
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text)
    return path


def test_recorded_feed_gives_each_message_kind(tmp_path):
    path = write_feed(tmp_path / "btcusdt_20240808.gz", FEED)

    events = list(iter_events([Source(path, venue="binance")]))

    assert [type(e) for e in events] == [Depth, Ticker, Snapshot, Trade]
    depth, ticker, snap, trade = events
    assert (depth.venue, depth.symbol, depth.first_id, depth.last_id) == (
        "binance",
        "BTCUSDT",
        5,
        9,
    )
    assert ticker.ask_price == Decimal("100.5") and ticker.bid_qty == Decimal(2)
    assert (
        snap.symbol == "BTCUSDT" and snap.last_update_id == 8
    )  # the bare line takes the file's symbol
    assert (trade.price, trade.quantity, trade.side, trade.trade_id) == (
        Decimal("100.5"),
        Decimal("0.25"),
        "buy",
        7,
    )
    assert [e.ts_ns for e in events] == [1000, 1010, 1020, 1030]


def test_plain_text_feed_and_folder_names_the_venue(tmp_path):
    (tmp_path / "sim-a").mkdir()
    path = write_feed(tmp_path / "sim-a" / "btcusdt_20250101_000000.txt", FEED[:1])

    (event,) = iter_events([path])

    assert event.venue == "sim-a"


def test_several_files_are_merged_by_time(tmp_path):
    a = write_feed(tmp_path / "a.gz", FEED, start_ns=1_000, step_ns=10)
    b = write_feed(tmp_path / "b.txt", FEED, start_ns=1_005, step_ns=10)

    times = [e.ts_ns for e in iter_events([a, b])]

    assert times == sorted(times) and len(times) == 8


def test_bad_lines_are_reported_with_file_line_and_reason_and_skipped(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text(
        f"100 {FEED[0]}\n"
        "110 {not json\n"
        '120 {"stream":"btcusdt@kline_1m","data":{}}\n'
        f"90 {FEED[3]}\n"
        "abc def\n"
    )
    issues = Issues()

    events = list(iter_events([path], issues=issues))

    assert [type(e) for e in events] == [Depth, Trade]
    assert events[1].ts_ns == 120  # clamped to the line before, not lost
    reasons = [str(i) for i in issues.items]
    assert reasons[0].startswith(f"{path}:2: not JSON")
    assert reasons[1] == f"{path}:3: unknown stream: btcusdt@kline_1m"
    assert reasons[2] == f"{path}:4: timestamp goes backwards: by 30 ns (clamped)"
    assert reasons[3].startswith(f"{path}:5: bad timestamp")
    assert issues.total == 4


def test_missing_file_stops_before_the_first_event(tmp_path):
    with pytest.raises(DataError, match=r"nope\.gz: no such file"):
        iter_events([tmp_path / "nope.gz"])


def test_unknown_format_names_the_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(DataError, match=r"x\.csv:1: unknown format"):
        iter_events([path])


def test_truncated_gzip_is_reported_not_raised(tmp_path):
    full = write_feed(tmp_path / "full.gz", FEED * 50)
    cut = tmp_path / "cut.gz"
    cut.write_bytes(full.read_bytes()[:-40])
    issues = Issues()

    events = list(iter_events([cut], issues=issues))

    assert len(events) > 0 and issues.counts["unreadable"] == 1


def _complete_lines_before_the_cut(path: Path) -> int:
    """What ``GzipFile.readline`` alone gives of a cut file before it raises."""
    count = 0
    with gzip.GzipFile(path, "rb") as fh:
        try:
            for _ in fh:
                count += 1
        except EOFError:
            pass
    return count


@pytest.mark.parametrize("cut", [40, 3_000, 20_000])
def test_truncated_gzip_gives_every_line_before_the_cut(tmp_path, cut):
    # the fast reader reads ahead by a buffer; on a cut file it must not lose those lines
    full = write_feed(tmp_path / "full.gz", FEED * 3_000)
    cut_path = tmp_path / "cut.gz"
    cut_path.write_bytes(full.read_bytes()[:-cut])
    expected = _complete_lines_before_the_cut(cut_path)
    issues = Issues()

    events = list(iter_events([cut_path], issues=issues))

    assert 0 < expected < len(FEED) * 3_000
    assert len(events) == expected and issues.counts["unreadable"] == 1
    assert issues.items[0].line == expected + 1


def test_trade_csv_with_ms_times_iso_times_and_sides(tmp_path):
    path = tmp_path / "ethusdt.csv"
    path.write_text(
        "timestamp,price,qty,side\n"
        "1723161254000,2500.5,0.1,buy\n"
        "2024-08-08T23:54:15Z,2500.4,0.2,s\n"
        "1723161256000,-1,0.1,buy\n"
    )
    issues = Issues()

    events = list(iter_events([path], issues=issues))

    assert [(e.ts_ns, e.symbol, e.price, e.side) for e in events] == [
        (1723161254000 * 10**6, "ETHUSDT", Decimal("2500.5"), "buy"),
        (1723161255 * 10**9, "ETHUSDT", Decimal("2500.4"), "sell"),
    ]
    assert str(issues.items[0]).startswith(f"{path}:4: bad CSV row")


def test_ohlcv_csv(tmp_path):
    path = tmp_path / "btc_1m.csv"
    path.write_text("time,open,high,low,close,volume,symbol\n1700000000,10,12,9,11,5,BTC/USDT\n")

    (bar,) = iter_events([path])

    assert isinstance(bar, Bar)
    assert (bar.ts_ns, bar.symbol, bar.close, bar.volume) == (
        1700000000 * 10**9,
        "BTC/USDT",
        Decimal(11),
        Decimal(5),
    )


@needs_shared
def test_shared_recordings_read_without_issues():
    issues = Issues()
    paths = [SHARED / "btcusdt_20240808.gz", SHARED / "ethusdt_20240808.gz"]

    kinds: dict[str, int] = {}
    last = 0
    for event in iter_events(paths, issues=issues):
        assert event.ts_ns >= last
        last = event.ts_ns
        kinds[type(event).__name__] = kinds.get(type(event).__name__, 0) + 1

    assert issues.total == 0
    # the README's counts
    assert kinds == {
        "Depth": 3451 + 3434,
        "Trade": 9757 + 6106,
        "Ticker": 28040 + 24077,
        "Snapshot": 2,
    }
