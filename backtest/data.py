"""Reading market-data recordings into one time-ordered stream of events (pure, no Django).

Formats:

* **Recorded feed** (``../shared/data/binance-spot/`` and what ``marketdata/recorder.py``
  writes): gzip or plain text, one message a line, ``<receive time, ns since epoch> <JSON>``.
  The JSON is Binance's combined-stream envelope ``{"stream": "btcusdt@depth@100ms",
  "data": {...}}`` (``depthUpdate`` diffs, ``trade``, ``bookTicker``), or the bare REST
  depth answer ``{"lastUpdateId": ..., "bids": [...], "asks": [...]}`` (a snapshot; its
  symbol is the one the file's streams carry, or the file name's first ``_`` part).
* **Trade CSV**: a header with a time column (``ts``, ``ts_ns``, ``timestamp``, ``time``
  or ``date``), ``price``, a quantity column (``quantity``, ``qty``, ``amount``, ``size``,
  ``volume``), optional ``side`` (the aggressor: buy or sell) and ``symbol``.
* **OHLCV CSV**: a time column and ``open``, ``high``, ``low``, ``close``, ``volume``.

CSV times are epoch numbers (s, ms, us or ns, told apart by magnitude) or ISO 8601 (UTC
when no offset is given).

``iter_events(paths)`` merges the files by receive time (``heapq.merge``; ties keep file
order). Problems with one line (not JSON, an unknown stream, a time going backwards) are
reported to an :class:`Issues` collector with file, line and reason, and the run goes on:
a bad line is skipped, a time that goes backwards is clamped to the previous one (so that
a depth diff is not lost and the book stays in sequence). A file that is missing or
unreadable stops the run before it starts, with a :class:`DataError` naming it.

Prices and quantities of book levels stay strings (the book builder parses them; most
levels of a diff are never looked at otherwise); trades and tickers carry ``Decimal``
(a text seen before gives the same ``Decimal`` object: a bounded cache, see ``_dec``).

The event classes are plain (not frozen) slotted dataclasses: treat them as read-only.
A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which
made building the events about a third of the time spent reading a recording.
"""

from __future__ import annotations

import csv
import gzip
import heapq
import io
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

try:  # the faster parser where the venv has it
    import orjson

    _loads: Any = orjson.loads
except ImportError:  # pragma: no cover - depends on the environment
    import json

    _loads = json.loads

RawLevel = Sequence[str | Decimal]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A full depth snapshot (``GET /api/v3/depth``)."""

    ts_ns: int
    venue: str
    symbol: str
    last_update_id: int | None
    bids: Sequence[RawLevel]
    asks: Sequence[RawLevel]


@dataclass(frozen=True, slots=True)
class Depth:
    """One ``depthUpdate`` diff, update ids ``first_id`` (``U``) to ``last_id`` (``u``)."""

    ts_ns: int
    venue: str
    symbol: str
    first_id: int
    last_id: int
    bids: Sequence[RawLevel]
    asks: Sequence[RawLevel]


@dataclass(frozen=True, slots=True)
class Trade:
    """A trade printed by the venue; ``side`` is the aggressor's (``buy`` or ``sell``)."""

    ts_ns: int
    venue: str
    symbol: str
    price: Decimal
    quantity: Decimal
    side: str | None
    trade_id: int | None = None


@dataclass(frozen=True, slots=True)
class Ticker:
    """Best bid and ask with their quantities (``bookTicker``)."""

    ts_ns: int
    venue: str
    symbol: str
    bid_price: Decimal
    bid_qty: Decimal
    ask_price: Decimal
    ask_qty: Decimal
    update_id: int | None = None  # Binance ``u``: the book update it reflects


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar; ``ts_ns`` is its close time as the file gives it."""

    ts_ns: int
    venue: str
    symbol: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


Event = Snapshot | Depth | Trade | Ticker | Bar


class DataError(Exception):
    """A recording cannot be used at all (missing, unreadable, unknown format)."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None) -> None:
        self.path, self.reason, self.line = str(path), reason, line
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class Issue:
    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass
class Issues:
    """What was wrong with single lines: counted by kind, the first ``keep`` kept whole."""

    keep: int = 100
    items: list[Issue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)

    def add(self, path: str, line: int, kind: str, detail: str = "") -> None:
        self.counts[kind] += 1
        if len(self.items) < self.keep:
            self.items.append(Issue(path, line, f"{kind}: {detail}" if detail else kind))

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class Source:
    """A file to read, with the venue and symbol its events are given when it has none."""

    path: Path
    venue: str | None = None
    symbol: str | None = None


# ---------------------------------------------------------------------------- opening


def _open_bytes(path: Path) -> IO[bytes]:
    try:
        fh = path.open("rb")
        magic = fh.read(2)
        fh.seek(0)
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except IsADirectoryError:
        raise DataError(path, "is a directory, not a recording") from None
    except OSError as exc:
        raise DataError(path, f"cannot be read ({exc.strerror or exc})") from None
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    return fh


def _first_line(path: Path) -> bytes:
    with _open_bytes(path) as fh:
        try:
            while True:
                line = fh.readline()
                if not line:
                    return b""
                if line.strip():
                    return line.strip()
        except (OSError, EOFError) as exc:
            raise DataError(path, f"cannot be read ({exc})") from None


def detect_format(path: Path) -> str:
    """``feed``, ``trades_csv`` or ``ohlcv_csv``, from the first non-empty line."""
    first = _first_line(path)
    if not first:
        return "feed"  # an empty recording: no events
    head = first.split(b" ", 1)[0]
    if head.isdigit() and b"{" in first:
        return "feed"
    columns = {c.strip().lower() for c in first.decode("utf-8", "replace").split(",")}
    if {"open", "high", "low", "close"} <= columns:
        return "ohlcv_csv"
    if "price" in columns:
        return "trades_csv"
    raise DataError(
        path,
        "unknown format: expected '<ns> <JSON>' lines, or a CSV header with price"
        " (trades) or open,high,low,close (OHLCV)",
        line=1,
    )


def default_venue(path: Path) -> str:
    """The recorder writes ``<dir>/<venue>/<symbol>_<start>.gz``: the folder names the venue."""
    return path.resolve().parent.name or "replay"


def default_symbol(path: Path) -> str:
    return path.name.split(".", 1)[0].split("_", 1)[0].upper()


# ---------------------------------------------------------------------------- feed


def _decimal(value: Any) -> Decimal:
    return Decimal(value)


class _Decimals(dict[str, Decimal]):
    """Text -> Decimal for trade and ticker fields: prices and sizes repeat line after line,
    and a hit is a plain dict lookup (``__missing__`` parses on a miss). Bounded: cleared
    when full. ``Decimal`` is immutable, so sharing one object is safe."""

    MAX = 200_000

    def __missing__(self, text: str) -> Decimal:
        value = Decimal(text)
        if len(self) >= self.MAX:
            self.clear()
        self[text] = value
        return value


_DECIMALS = _Decimals()


def _lines(path: Path, fh: IO[bytes]) -> Iterator[bytes]:
    """The lines of an open recording. ``GzipFile.readline`` is Python code run for every
    line; a buffered reader on top finds them in C (reading about a third faster). When a
    gzip file is cut short that reader loses the lines of its last buffer: the file is then
    read again the slow way from the first line not yet given, so that the same lines come
    before the same error as with ``readline`` alone."""
    if not isinstance(fh, gzip.GzipFile):
        yield from fh
        return
    given = 0
    try:
        for raw in io.BufferedReader(fh):
            given += 1
            yield raw
        return
    except (OSError, EOFError):
        pass
    with _open_bytes(path) as slow:
        for index, raw in enumerate(slow):  # raises again where the file is cut
            if index >= given:
                yield raw


def read_feed(
    path: Path, *, venue: str | None = None, symbol: str | None = None, issues: Issues
) -> Iterator[Event]:
    """The events of one recorded-feed file, in file order (times clamped, see module)."""
    venue = venue or default_venue(path)
    name = str(path)
    fallback = symbol or default_symbol(path)
    known: str | None = symbol  # the symbol the file's streams carry, for bare snapshots
    last_ts = 0
    loads = _loads
    kinds: dict[str, str] = {}  # stream name -> what follows its "@"
    dec = _DECIMALS
    fh = _open_bytes(path)
    try:
        lineno = 0
        for raw in _lines(path, fh):
            lineno += 1
            ts_text, _, body = raw.partition(b" ")
            try:
                ts = int(ts_text)
            except ValueError:
                if raw.strip():
                    issues.add(
                        name, lineno, "bad timestamp", repr(ts_text[:30].decode("utf-8", "replace"))
                    )
                continue
            try:
                msg = loads(body)
            except ValueError as exc:
                issues.add(name, lineno, "not JSON", str(exc)[:80])
                continue
            if ts < last_ts:
                issues.add(
                    name, lineno, "timestamp goes backwards", f"by {last_ts - ts} ns (clamped)"
                )
                ts = last_ts
            last_ts = ts
            if not isinstance(msg, dict):
                issues.add(name, lineno, "unknown message", "not a JSON object")
                continue
            stream = msg.get("stream")
            try:
                if stream is None:
                    if "lastUpdateId" in msg:
                        yield Snapshot(
                            ts,
                            venue,
                            known or fallback,
                            int(msg["lastUpdateId"]),
                            msg["bids"],
                            msg["asks"],
                        )
                    else:
                        issues.add(
                            name, lineno, "unknown message", "no 'stream' and not a depth snapshot"
                        )
                    continue
                data = msg["data"]
                kind = kinds.get(stream)
                if kind is None:
                    kind = kinds[stream] = stream.partition("@")[2]
                if kind == "bookTicker":
                    sym = symbol or data["s"]
                    yield Ticker(
                        ts,
                        venue,
                        sym,
                        dec[data["b"]],
                        dec[data["B"]],
                        dec[data["a"]],
                        dec[data["A"]],
                        data.get("u"),
                    )
                elif kind == "trade":
                    sym = symbol or data["s"]
                    # ``m``: the buyer is the maker, so the aggressor sold
                    yield Trade(
                        ts,
                        venue,
                        sym,
                        dec[data["p"]],
                        dec[data["q"]],
                        "sell" if data["m"] else "buy",
                        data.get("t"),
                    )
                elif kind.startswith("depth"):
                    sym = symbol or data["s"]
                    if "U" not in data:  # partial-book stream: a snapshot each time
                        yield Snapshot(
                            ts, venue, sym, data.get("lastUpdateId"), data["bids"], data["asks"]
                        )
                    else:
                        yield Depth(ts, venue, sym, data["U"], data["u"], data["b"], data["a"])
                else:
                    issues.add(name, lineno, "unknown stream", str(stream)[:60])
                    continue
                known = sym
            except (KeyError, TypeError, ValueError, InvalidOperation, AttributeError) as exc:
                issues.add(name, lineno, "malformed message", f"{type(exc).__name__} {exc}"[:80])
    except (OSError, EOFError) as exc:
        issues.add(name, lineno + 1, "unreadable", str(exc)[:80])
    finally:
        fh.close()


# ---------------------------------------------------------------------------- CSV

TIME_COLUMNS = ("ts_ns", "ts", "timestamp", "time", "date", "datetime", "open_time")
QTY_COLUMNS = ("quantity", "qty", "amount", "size", "volume")


def parse_time_ns(text: str) -> int:
    """Epoch s/ms/us/ns (by magnitude) or ISO 8601 (UTC unless it says otherwise)."""
    text = text.strip()
    try:
        number = Decimal(text)
    except InvalidOperation:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(Decimal(str(when.timestamp())) * 1_000_000_000)
    if not number.is_finite() or number < 0:
        raise ValueError(f"not a time: {text!r}")
    magnitude = abs(number)
    scale = (
        1
        if magnitude >= 10**17
        else 1_000
        if magnitude >= 10**14
        else 10**6
        if magnitude >= 10**11
        else 10**9
    )
    return int(number * scale)


def _column(header: list[str], names: Iterable[str], path: Path, what: str) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise DataError(path, f"CSV header has no {what} column (one of {', '.join(names)})", line=1)


def read_csv(
    path: Path, *, kind: str, venue: str | None = None, symbol: str | None = None, issues: Issues
) -> Iterator[Event]:
    """Trades or OHLCV bars from a CSV file with a header line."""
    venue = venue or default_venue(path)
    name = str(path)
    fh = io.TextIOWrapper(_open_bytes(path), encoding="utf-8", newline="")
    try:
        reader = csv.reader(fh)
        try:
            header = [c.strip().lower() for c in next(reader)]
        except StopIteration:
            return
        t_col = _column(header, TIME_COLUMNS, path, "time")
        sym_col = header.index("symbol") if "symbol" in header else None
        fixed_symbol = symbol or default_symbol(path)
        if kind == "trades_csv":
            p_col = _column(header, ("price",), path, "price")
            q_col = _column(header, QTY_COLUMNS, path, "quantity")
            s_col = header.index("side") if "side" in header else None
        else:
            cols = [_column(header, (c,), path, c) for c in ("open", "high", "low", "close")]
            v_col = _column(header, ("volume",), path, "volume") if "volume" in header else None
        last_ts = 0
        for lineno, row in enumerate(reader, start=2):
            if not row or not any(c.strip() for c in row):
                continue
            try:
                ts = parse_time_ns(row[t_col])
                sym = symbol or (row[sym_col].strip() if sym_col is not None else fixed_symbol)
                if ts < last_ts:
                    issues.add(
                        name, lineno, "timestamp goes backwards", f"by {last_ts - ts} ns (clamped)"
                    )
                    ts = last_ts
                last_ts = ts
                if kind == "trades_csv":
                    side = row[s_col].strip().lower() if s_col is not None else None
                    if side not in (None, "", "buy", "sell", "b", "s"):
                        raise ValueError(f"side {side!r} is not buy or sell")
                    side = {"b": "buy", "s": "sell", "": None}.get(side or "", side)
                    qty = Decimal(row[q_col])
                    price = Decimal(row[p_col])
                    if price <= 0 or qty <= 0:
                        raise ValueError("price and quantity must be positive")
                    yield Trade(ts, venue, sym, price, qty, side)
                else:
                    o, h, lo, c = (Decimal(row[i]) for i in cols)
                    vol = Decimal(row[v_col]) if v_col is not None else Decimal(0)
                    if min(o, h, lo, c) <= 0 or h < max(o, c, lo) or lo > min(o, c):
                        raise ValueError("prices must be positive with low <= open,close <= high")
                    yield Bar(ts, venue, sym, o, h, lo, c, vol)
            except (ValueError, IndexError, InvalidOperation) as exc:
                issues.add(name, lineno, "bad CSV row", f"{type(exc).__name__} {exc}"[:100])
    except UnicodeDecodeError as exc:
        issues.add(name, 0, "unreadable", f"not UTF-8 text ({exc.reason})")
    finally:
        fh.close()


# ---------------------------------------------------------------------------- merging


def _source(item: str | Path | Source) -> Source:
    return item if isinstance(item, Source) else Source(Path(item))


def read_file(source: str | Path | Source, *, issues: Issues) -> Iterator[Event]:
    src = _source(source)
    kind = detect_format(src.path)
    if kind == "feed":
        return read_feed(src.path, venue=src.venue, symbol=src.symbol, issues=issues)
    return read_csv(src.path, kind=kind, venue=src.venue, symbol=src.symbol, issues=issues)


def _ts(event: Event) -> int:
    return event.ts_ns


def iter_events(
    paths: Iterable[str | Path | Source], *, issues: Issues | None = None
) -> Iterator[Event]:
    """Every event of every file, merged by receive time.

    Each file is checked (exists, readable, known format) before the first event is
    yielded: a :class:`DataError` then, not half way through a run.
    """
    collector = issues if issues is not None else Issues()
    streams = [read_file(p, issues=collector) for p in paths]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_ts)
