"""Synthetic recordings: a seeded market written in the recorded-feed format of
``../shared/data/binance-spot/`` (and of ``marketdata/recorder.py``), so the project's tests,
benchmarks and demo need no third-party data.

One line per message, ``<receive time, ns since epoch> <JSON>``: a first ``bookTicker``, the
bare REST depth snapshot (``{"lastUpdateId", "bids", "asks"}``), then Binance's combined-stream
envelopes:
``<sym>@depth@100ms`` diffs (``U``/``u`` chained with no gap from the snapshot's
``lastUpdateId + 1``), ``<sym>@trade`` and ``<sym>@bookTicker``.

The market (pure, deterministic for a seed):

* a fair price does a geometric random walk (``volatility`` per square-root second);
* the book has levels near the touch on most ticks and sparser further out (gaps grow with
  depth), sizes log-normal and growing with depth, about ``levels`` a side;
* when the fair price moves through the book, the first level it crosses is often
  traded (a trade per level taken, as Binance prints one per maker) and makers pull the
  other crossed levels; then the new touch is quoted; taker orders arrive as a Poisson process at ``trades_per_s`` and eat into the
  best level, more often on the side the price is moving to; makers add, resize and cancel
  levels at random (``updates_per_s``), mostly near the touch;
* every 100 ms the changed levels go out as one depth diff; every change of the best bid
  or ask goes out as a ``bookTicker`` at the moment it happens; a receive latency of a
  few milliseconds separates event and receive times, which never go backwards.

Integer ticks and lots inside; prices and quantities are written as Binance writes them,
with eight decimals.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

STEP_MS = 100  # the depth stream's interval (``@depth@100ms``)
SCALE = 10**8  # eight decimals on the wire


@dataclass(frozen=True)
class SymbolSpec:
    """Instrument grid and a plausible market for one symbol."""

    tick: Decimal
    lot: Decimal
    mid: Decimal
    level_lots: int  # mean size of a level at the touch, in lots
    trade_lots: int  # mean size of a taker order, in lots


# Grids as Binance spot has them (and as the simulated exchange's instruments use).
SPECS = {
    "BTC/USDT": SymbolSpec(Decimal("0.01"), Decimal("0.00001"), Decimal("60000"), 20_000, 2_000),
    "ETH/USDT": SymbolSpec(Decimal("0.01"), Decimal("0.0001"), Decimal("2600"), 20_000, 2_000),
}
DEFAULT_SPEC = SymbolSpec(Decimal("0.01"), Decimal("0.001"), Decimal("100"), 20_000, 2_000)


@dataclass(frozen=True)
class SynthConfig:
    symbol: str = "BTC/USDT"
    minutes: float = 5.0
    seed: int = 0
    start_ns: int = 1_723_161_253_000_000_000  # 2024-08-08 23:54:13 UTC, as the real files
    mid: Decimal | None = None  # None: the symbol's usual price
    volatility: float = 0.0001  # stdev of the log-return per square-root second
    trades_per_s: float = 20.0
    updates_per_s: float = 150.0
    levels: int = 400  # per side, about
    spread_ticks: int = 1  # the usual best ask - best bid


def exchange_id(symbol: str) -> str:
    """``BTC/USDT`` -> ``BTCUSDT``."""
    base, sep, quote = symbol.upper().partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"symbol must look like BASE/QUOTE, got {symbol!r}")
    return base + quote


def _units(value: Decimal) -> int:
    units = value * SCALE
    if units != units.to_integral_value() or units <= 0:
        raise ValueError(f"{value} is not a positive multiple of 1e-8")
    return int(units)


def _wire(units: int) -> str:
    return f"{units // SCALE}.{units % SCALE:08d}"


class SyntheticMarket:
    """The market of one symbol; :meth:`lines` yields the recording, line by line."""

    def __init__(self, config: SynthConfig) -> None:
        self.config = config
        self.sid = exchange_id(config.symbol)
        self.stream = self.sid.lower()
        spec = SPECS.get(config.symbol.upper(), DEFAULT_SPEC)
        self.spec = spec
        mid = config.mid if config.mid is not None else spec.mid
        if mid <= 0:
            raise ValueError(f"mid must be > 0, got {mid}")
        if config.minutes <= 0:
            raise ValueError(f"minutes must be > 0, got {config.minutes}")
        self.tick_units = _units(spec.tick)
        self.lot_units = _units(spec.lot)
        self.rng = random.Random(f"synth:{config.seed}:{self.sid}")
        self.fair = float(mid / spec.tick)  # in ticks
        self.bids: dict[int, int] = {}  # tick -> lots
        self.asks: dict[int, int] = {}
        self.update_id = 1_000_000 + self.rng.randrange(1_000_000)
        self.trade_id = 100_000 + self.rng.randrange(100_000)
        self.changed: dict[tuple[bool, int], int] = {}  # (is_bid, tick) -> lots, this interval
        self.top: tuple[int, int, int, int] | None = None
        self.last_rx = 0
        self._build_initial_book()

    # -------------------------------------------------------------------- the book

    def _size(self, depth: int) -> int:
        mean = self.spec.level_lots * (1.0 + depth / 40.0)
        return max(1, int(self.rng.lognormvariate(math.log(mean), 0.9)))

    def _gap(self, depth: int) -> int:
        """Ticks from one level to the next: dense at the touch, sparser further out."""
        mean = 1.0 + depth / 25.0
        return 1 + int(self.rng.expovariate(1.0 / mean)) if mean > 1.0 else 1

    def _build_initial_book(self) -> None:
        bid = math.floor(self.fair - self.config.spread_ticks / 2)
        ask = bid + max(1, self.config.spread_ticks)
        price = bid
        for depth in range(self.config.levels):
            self.bids[price] = self._size(depth)
            price -= self._gap(depth)
            if price <= 0:
                break
        price = ask
        for depth in range(self.config.levels):
            self.asks[price] = self._size(depth)
            price += self._gap(depth)

    def _set(self, is_bid: bool, tick: int, lots: int) -> None:
        side = self.bids if is_bid else self.asks
        if lots > 0:
            side[tick] = lots
        else:
            side.pop(tick, None)
        self.changed[(is_bid, tick)] = max(lots, 0)
        self.update_id += 1

    def best_bid(self) -> int | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> int | None:
        return min(self.asks) if self.asks else None

    # -------------------------------------------------------------------- events

    def _rx(self, event_ms: float) -> int:
        """A receive time in ns: the event time plus a few ms of network, never backwards."""
        rx = int((event_ms + 1.0 + self.rng.expovariate(1 / 2.0)) * 1_000_000)
        self.last_rx = max(self.last_rx + 1_000, rx)
        return self.last_rx

    def _envelope(self, kind: str, data: dict[str, Any]) -> str:
        return json.dumps({"stream": f"{self.stream}@{kind}", "data": data}, separators=(",", ":"))

    def _ticker_line(self, event_ms: float) -> str | None:
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or ask is None:
            return None
        top = (bid, self.bids[bid], ask, self.asks[ask])
        if top == self.top:
            return None
        self.top = top
        t, lot = self.tick_units, self.lot_units
        data = {
            "u": self.update_id,
            "s": self.sid,
            "b": _wire(bid * t),
            "B": _wire(top[1] * lot),
            "a": _wire(ask * t),
            "A": _wire(top[3] * lot),
        }
        return f"{self._rx(event_ms)} {self._envelope('bookTicker', data)}"

    def _trade(self, event_ms: float, buyer_is_taker: bool, lots: int) -> list[str]:
        """A taker order of ``lots``: a trade per level it takes, best level first."""
        out: list[str] = []
        side = self.asks if buyer_is_taker else self.bids
        while lots > 0 and side:
            tick = min(side) if buyer_is_taker else max(side)
            take = min(lots, side[tick])
            lots -= take
            self._set(not buyer_is_taker, tick, side[tick] - take)
            self.trade_id += 1
            ms = int(event_ms)
            data = {
                "e": "trade",
                "E": ms + 1,
                "s": self.sid,
                "t": self.trade_id,
                "p": _wire(tick * self.tick_units),
                "q": _wire(take * self.lot_units),
                "T": ms,
                "m": not buyer_is_taker,  # the buyer is the maker: a seller took
                "M": True,
            }
            out.append(f"{self._rx(event_ms)} {self._envelope('trade', data)}")
            if (ticker := self._ticker_line(event_ms)) is not None:
                out.append(ticker)
        return out

    def _follow_fair(self, event_ms: float) -> list[str]:
        """The fair price moved: trade away the levels it crossed, then quote the touch."""
        out: list[str] = []
        half = max(1, self.config.spread_ticks) / 2
        want_bid = math.floor(self.fair - half + 0.5)
        want_ask = want_bid + max(1, self.config.spread_ticks)
        # the first level crossed is often taken; makers pull the rest before they are hit
        if self.asks and min(self.asks) < want_ask and self.rng.random() < 0.5:
            out += self._trade(event_ms, True, self.asks[min(self.asks)])
        while self.asks and min(self.asks) < want_ask:
            self._set(False, min(self.asks), 0)
        if self.bids and max(self.bids) > want_bid and self.rng.random() < 0.5:
            out += self._trade(event_ms, False, self.bids[max(self.bids)])
        while self.bids and max(self.bids) > want_bid:
            self._set(True, max(self.bids), 0)
        bid, ask = self.best_bid(), self.best_ask()
        if bid is None or bid < want_bid:
            self._set(True, want_bid, self._size(0))
        if ask is None or ask > want_ask:
            self._set(False, want_ask, self._size(0))
        if (ticker := self._ticker_line(event_ms)) is not None:
            out.append(ticker)
        return out

    def _maker_update(self, event_ms: float) -> list[str]:
        rng = self.rng
        is_bid = rng.random() < 0.5
        side = self.bids if is_bid else self.asks
        best = self.best_bid() if is_bid else self.best_ask()
        if best is None:
            return []
        depth = int(rng.expovariate(1 / 12.0))  # mostly near the touch
        tick = best - depth if is_bid else best + depth
        if tick <= 0:
            return []
        opposite = self.best_ask() if is_bid else self.best_bid()
        if opposite is not None and (tick >= opposite if is_bid else tick <= opposite):
            return []
        r = rng.random()
        if tick not in side:
            self._set(is_bid, tick, self._size(depth))
        elif r < 0.3 and len(side) > 1 and tick != best:
            self._set(is_bid, tick, 0)  # cancelled
        else:
            self._set(is_bid, tick, max(1, int(side[tick] * rng.uniform(0.4, 1.8))))
        ticker = self._ticker_line(event_ms)
        return [ticker] if ticker is not None else []

    def _keep_depth(self) -> None:
        """Levels far away come and go so each side stays about ``levels`` deep."""
        for is_bid in (True, False):
            side = self.bids if is_bid else self.asks
            while len(side) > self.config.levels * 1.25:
                self._set(is_bid, min(side) if is_bid else max(side), 0)
            while len(side) < self.config.levels:
                far = min(side) if is_bid else max(side)
                tick = far - self._gap(len(side)) if is_bid else far + self._gap(len(side))
                if tick <= 0:
                    break
                self._set(is_bid, tick, self._size(len(side)))

    def _diff_line(self, event_ms: int, first_id: int) -> str | None:
        if not self.changed:
            return None
        t, lot = self.tick_units, self.lot_units
        bids = sorted(((tick, q) for (b, tick), q in self.changed.items() if b), reverse=True)
        asks = sorted((tick, q) for (b, tick), q in self.changed.items() if not b)
        self.changed = {}
        data = {
            "e": "depthUpdate",
            "E": event_ms,
            "s": self.sid,
            "U": first_id,
            "u": self.update_id,
            "b": [[_wire(p * t), _wire(q * lot)] for p, q in bids],
            "a": [[_wire(p * t), _wire(q * lot)] for p, q in asks],
        }
        return f"{self._rx(event_ms)} {self._envelope('depth@100ms', data)}"

    def snapshot_line(self, at_ms: float) -> str:
        t, lot = self.tick_units, self.lot_units
        bids = sorted(self.bids.items(), reverse=True)[:1000]
        asks = sorted(self.asks.items())[:1000]
        body = {
            "lastUpdateId": self.update_id,
            "bids": [[_wire(p * t), _wire(q * lot)] for p, q in bids],
            "asks": [[_wire(p * t), _wire(q * lot)] for p, q in asks],
        }
        return f"{self._rx(at_ms)} {json.dumps(body, separators=(',', ':'))}"

    def lines(self) -> Iterator[str]:
        """The whole recording: the snapshot, then ``minutes`` of streams."""
        cfg, rng = self.config, self.rng
        start_ms = cfg.start_ns / 1_000_000
        self.last_rx = cfg.start_ns
        # as a handler records: the streams first (so the file names its symbol before the
        # bare snapshot does not), then the REST snapshot they are sequenced against
        self.top = None
        ticker = self._ticker_line(start_ms)
        assert ticker is not None
        yield ticker
        yield self.snapshot_line(start_ms)
        self.changed = {}
        steps = int(cfg.minutes * 60_000 / STEP_MS)
        dt = STEP_MS / 1000.0
        sigma = cfg.volatility * math.sqrt(dt)
        for step in range(steps):
            t0 = start_ms + step * STEP_MS
            first_id = self.update_id + 1
            # what happens inside this interval, in time order
            moments: list[tuple[float, str]] = [(t0 + rng.random() * STEP_MS, "fair")]
            for _ in range(self._poisson(cfg.trades_per_s * dt)):
                moments.append((t0 + rng.random() * STEP_MS, "trade"))
            for _ in range(self._poisson(cfg.updates_per_s * dt)):
                moments.append((t0 + rng.random() * STEP_MS, "maker"))
            moments.sort()
            drift = 0.0
            for at, what in moments:
                if what == "fair":
                    move = rng.gauss(0.0, sigma)
                    drift = move
                    self.fair *= math.exp(move)
                    yield from self._follow_fair(at)
                elif what == "trade":
                    # takers lean the way the price is going
                    buy = rng.random() < 0.5 + max(-0.3, min(0.3, drift / (sigma or 1) * 0.15))
                    lots = max(1, int(rng.lognormvariate(math.log(self.spec.trade_lots), 1.2)))
                    yield from self._trade(at, buy, lots)
                else:
                    yield from self._maker_update(at)
            self._keep_depth()
            line = self._diff_line(int(t0 + STEP_MS), first_id)
            if line is not None:
                yield line

    def _poisson(self, lam: float) -> int:
        limit, k, p = math.exp(-lam), 0, self.rng.random()
        while p > limit:
            k += 1
            p *= self.rng.random()
        return k


def write_recording(path: Path, config: SynthConfig) -> int:
    """Write the recording to ``path`` (gzip when the name ends in ``.gz``); return the
    number of lines."""
    market = SyntheticMarket(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    fh: IO[str]
    if path.suffix == ".gz":
        fh = gzip.open(tmp, "wt", encoding="utf-8", compresslevel=6)
    else:
        fh = tmp.open("w", encoding="utf-8")
    with fh:
        for line in market.lines():
            fh.write(line)
            fh.write("\n")
            n += 1
    tmp.replace(path)  # a reader never sees half a file
    return n
