"""Replayed market: the simulated exchange's house liquidity follows a recording.

``oms simex --replay FILE [--speed X] [--loop]`` drives a :class:`MatchingEngine` with
:class:`ReplayMarket` instead of the synthetic :class:`~venues.sim.market.MarketModel`.
The recording (the recorded-feed format of ``../shared/data/binance-spot/``, read by
``backtest/data.py``) is rebuilt into an L2 book with the market-data book builder, and the
engine's book is kept equal to it:

* every recorded level is house liquidity: resting house orders whose total at that price
  is the recorded quantity. A level that grows gets a new house order at the back of the
  queue; one that shrinks loses its newest house orders first (cut in place, keeping their
  place), so a user order keeps the recorded quantity that was ahead of it;
* a recorded trade is replayed as an IOC order of the recorded aggressor at the recorded
  price and size from a *tape* account: it takes the house orders ahead in the queue first
  and fills a user order resting at that price (or better) only for what is left, which is
  how queue position works on the real venue. Its print goes out on the trade stream;
* user orders trade against this liquidity through the same matching engine as always;
  what they take is back at the next recorded diff that touches the level (the recording
  does not know about us: no lasting market impact). A recorded level that comes to cross
  a resting user order trades with it (the user is the maker), as the price moving
  through it would;
* the book is the backtester's view of the recording (:class:`RecordedBook`, the rule of
  ``backtest.venue.SourceBook``, which venues may not import: tests hold the two equal):
  the L2 book rebuilt from the snapshot and the 100 ms depth diffs, with the newest
  ``bookTicker`` laid over its top while the ticker is newer than the depth (Binance's
  ticker is real time). So the simulator's book equals the book the backtester trades
  against at the same moment, but for the levels a replayed trade took since.

Time: replay time starts where every symbol's book is in sync (the recording's first
snapshots) and advances with the simulator's clock times ``speed``; while the market is paused (``POST /sim/market {"paused": true}``) it
stands still. At the end of the recording the book stays as it was, or, with ``loop``, the
recording starts again (the house book is re-synced from its snapshot).

Pure: no Django, no asyncio; the server calls :meth:`ReplayMarket.step` from its loop.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from backtest.data import Depth, Event, Issues, Snapshot, Ticker, Trade, iter_events
from marketdata.book import Diff, L2Book, MdState
from venues.sim.engine import BUY, GTC, IOC, LIMIT, SELL, EngineError, MatchingEngine, Order
from venues.sim.market import HOUSE_ACCOUNT, HOUSE_BALANCE

TAPE_ACCOUNT = "__tape__"
# Quote currencies, longest first, to split an exchange id: BTCUSDT -> BTC/USDT.
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "EUR", "TRY", "BTC", "ETH", "BNB")


def unified_symbol(exchange_id: str) -> str:
    """``BTCUSDT`` -> ``BTC/USDT`` (``BTC/USDT`` is returned as it is)."""
    sid = exchange_id.upper()
    if "/" in sid:
        return sid
    for quote in QUOTES:
        if sid.endswith(quote) and len(sid) > len(quote):
            return f"{sid[: -len(quote)]}/{quote}"
    raise ValueError(f"cannot tell base from quote in symbol {exchange_id!r}")


def recorded_symbols(paths: Sequence[Path], *, scan: int = 2_000) -> list[str]:
    """The exchange ids (``BTCUSDT``) of the first ``scan`` events of the recordings."""
    found: list[str] = []
    events = iter_events(paths, issues=Issues())
    for i, ev in enumerate(events):
        if ev.symbol not in found:
            found.append(ev.symbol)
        if i >= scan:
            break
    return found


@dataclass(frozen=True)
class ReplayConfig:
    paths: tuple[Path, ...]
    speed: float = 1.0
    loop: bool = False

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError("--replay needs at least one recording")
        if not self.speed > 0:
            raise ValueError(f"--speed must be > 0, got {self.speed}")


class RecordedBook:
    """A recorded symbol's book: the L2 book from snapshot and diffs, and the newest ticker
    over its top while it is newer than the depth (a ticker-only recording is a one-level
    book). The same rule as ``backtest.venue.SourceBook``."""

    def __init__(self, symbol: str) -> None:
        self.book = L2Book(symbol)
        self.top: tuple[Decimal, Decimal, Decimal, Decimal] | None = None  # bid, qty, ask, qty
        self.top_id = -1

    @property
    def state(self) -> MdState:
        if self.book.in_sync:
            return MdState.LIVE
        if self.top is not None and not self.book._sequenced:
            return MdState.LIVE
        return self.book.state

    def on_snapshot(self, ev: Snapshot) -> None:
        self.book.apply_snapshot(ev.bids, ev.asks, ev.last_update_id)
        if self.top is not None and (ev.last_update_id or 0) >= self.top_id:
            self.top = None

    def on_depth(self, ev: Depth) -> None:
        self.book.apply_diff(Diff(ev.first_id, ev.last_id, ev.bids, ev.asks))
        if self.top is not None and ev.last_id >= self.top_id:
            self.top = None  # the depth has caught up with the ticker

    def on_ticker(self, ev: Ticker) -> None:
        uid = ev.update_id if ev.update_id is not None else self.top_id + 1
        last = self.book.last_update_id
        if (last is not None and uid <= last) or uid < self.top_id:
            return  # older than what we hold
        self.top = (ev.bid_price, ev.bid_qty, ev.ask_price, ev.ask_qty)
        self.top_id = uid

    def best(self, is_bid: bool) -> Decimal | None:
        if self.top is not None:
            return self.top[0] if is_bid else self.top[2]
        level = (self.book.bids if is_bid else self.book.asks).best()
        return None if level is None else level[0]

    def level_qty(self, is_bid: bool, price: Decimal) -> Decimal:
        top = self.top
        if top is not None:
            if is_bid:
                if price > top[0]:
                    return Decimal(0)
                if price == top[0]:
                    return top[1]
            else:
                if price < top[2]:
                    return Decimal(0)
                if price == top[2]:
                    return top[3]
        return (self.book.bids if is_bid else self.book.asks).levels.get(price, Decimal(0))


@dataclass
class _SymbolReplay:
    """The recorded book of one symbol and the house orders that stand for it."""

    source: RecordedBook
    mid: Decimal = Decimal(0)
    # (side, price) -> the house orders at that level, oldest first
    levels: dict[tuple[str, Decimal], list[Order]] = field(default_factory=dict)


class ReplayMarket:
    """Keeps a :class:`MatchingEngine`'s house liquidity equal to a recording's book."""

    def __init__(
        self,
        engine: MatchingEngine,
        config: ReplayConfig,
        house_account: str = HOUSE_ACCOUNT,
        tape_account: str = TAPE_ACCOUNT,
    ) -> None:
        self.engine = engine
        self.config = config
        self.house = house_account
        self.tape = tape_account
        assets: set[str] = set()
        for inst in engine.instruments.values():
            assets.update((inst.base, inst.quote))
        for name in (house_account, tape_account):
            if name not in engine.accounts:
                engine.add_account(
                    name,
                    dict.fromkeys(sorted(assets), HOUSE_BALANCE),
                    maker_fee=Decimal(0),
                    taker_fee=Decimal(0),
                    keep_history=False,
                    check_limits=False,
                    check_filters=False,
                )
        self.issues = Issues()
        self.loops = 0
        self.events = 0  # events consumed since the (last) start of the recording
        self.skipped: dict[str, int] = {}  # kind -> events not applied (other symbol, ticker)
        self.finished = False
        self.replay_ns: int | None = None
        self.last_event_ns: int | None = None  # the time of the last event applied
        self._last_ms: int | None = None
        self._pending: Event | None = None
        self._events: Iterator[Event] = iter(())
        self.states: dict[str, _SymbolReplay] = {}
        self._restart()
        self._prime()

    # ------------------------------------------------------------------ reading

    def _restart(self) -> None:
        self._events = iter_events(self.config.paths, issues=self.issues)
        self._pending = next(self._events, None)
        if self._pending is None:
            raise ValueError(f"no events in {', '.join(map(str, self.config.paths))}")
        self.replay_ns = self._pending.ts_ns
        self.events = 0
        self.finished = False
        # a fresh book builder: the house book follows from the recording's snapshot
        self.states = {
            sid: _SymbolReplay(RecordedBook(sid), levels=old.levels)
            for sid, old in self.states.items()
        } or {sid: _SymbolReplay(RecordedBook(sid)) for sid in self.engine.instruments}

    def _prime(self, within_ns: int = 120 * 10**9) -> None:
        """Start where the recording has a book: apply events until every symbol's book is
        in sync (a handler records its streams before the snapshot they need), or for at
        most ``within_ns`` of recording; a simulator started paused then has its book."""
        assert self._pending is not None
        limit = self._pending.ts_ns + within_ns
        while self._pending is not None and self._pending.ts_ns <= limit and not self.loops:
            if all(self._live(st) for st in self.states.values()):
                break
            self.advance_to(self._pending.ts_ns)

    def mid(self, symbol: str) -> Decimal:
        return self.states[symbol].mid

    def set_mid(self, symbol: str, mid: Decimal, now_ms: int | None = None) -> None:
        raise ValueError("the market follows a recording (--replay): its mid cannot be set")

    def update_config(self, symbol: str, **changes: object) -> None:
        raise ValueError("the market follows a recording (--replay): it has no settings")

    def hold(self, now_ms: int) -> None:
        """The market is paused: replay time stands still until the next :meth:`step`."""
        self._last_ms = now_ms

    def status(self) -> dict[str, Any]:
        return {
            "files": [str(p) for p in self.config.paths],
            "speed": self.config.speed,
            "loop": self.config.loop,
            "loops": self.loops,
            "events": self.events,
            "time_ns": self.replay_ns,
            "finished": self.finished,
            "skipped": dict(self.skipped),
            "issues": self.issues.total,
            "books": {sid: st.source.state.value for sid, st in self.states.items()},
        }

    # ------------------------------------------------------------------ stepping

    def step(self, now_ms: int) -> None:
        """Advance replay time to match the clock and apply every event up to it."""
        if self._last_ms is None or self.replay_ns is None:
            self._last_ms = now_ms
        dt_ms = max(0, now_ms - self._last_ms)
        self._last_ms = now_ms
        assert self.replay_ns is not None
        self.replay_ns += int(dt_ms * 1_000_000 * self.config.speed)
        self.advance_to(self.replay_ns)

    def advance_to(self, until_ns: int) -> int:
        """Apply the events recorded at or before ``until_ns``; return how many."""
        applied = 0
        while True:
            ev = self._pending
            if ev is None:
                if not self.config.loop:
                    self.finished = True
                    return applied
                # again from the start; its first events come with the next step (a
                # recording of no duration must not spin here)
                self.loops += 1
                self._restart()
                return applied
            if ev.ts_ns > until_ns:
                return applied
            self._apply(ev)
            self.events += 1
            self.last_event_ns = ev.ts_ns
            applied += 1
            self._pending = next(self._events, None)

    def advance_events(self, count: int) -> None:
        """Apply events until ``count`` have been applied since the recording's start (the
        request log's ``replay_events``: a replica stands where the simulator stood)."""
        while self.events < count and self._pending is not None:
            ev = self._pending
            self._apply(ev)
            self.events += 1
            self.replay_ns = self.last_event_ns = ev.ts_ns
            self._pending = next(self._events, None)

    def _skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1

    def _apply(self, ev: Event) -> None:
        st = self.states.get(ev.symbol)
        if st is None:
            self._skip("other symbol")
            return
        if isinstance(ev, Snapshot):
            st.source.on_snapshot(ev)
            self._sync_all(ev.symbol, st)
        elif isinstance(ev, Depth):
            was_live, before = self._live(st), self._overlay(st)
            st.source.on_depth(ev)
            if self._live(st):
                prices = [(BUY, Decimal(p)) for p, _ in ev.bids]
                prices += [(SELL, Decimal(p)) for p, _ in ev.asks]
                self._sync_levels(ev.symbol, st, prices + before + self._overlay(st))
            elif was_live:  # a gap or a crossed book: no book until the next snapshot
                self._sync_all(ev.symbol, st)
        elif isinstance(ev, Ticker):
            before = self._overlay(st)
            st.source.on_ticker(ev)
            if self._live(st):  # (a ticker-only recording is a one-level book)
                self._sync_levels(ev.symbol, st, before + self._overlay(st))
        elif isinstance(ev, Trade):
            self._replay_trade(ev)
        else:
            self._skip(type(ev).__name__.lower())

    # ------------------------------------------------------------------ the house book

    @staticmethod
    def _overlay(st: _SymbolReplay) -> list[tuple[str, Decimal]]:
        """The levels the ticker over the top decides: its two prices and the book's levels
        better than them (gone while the ticker is newer than the depth)."""
        top = st.source.top
        if top is None:
            return []
        bids, asks = st.source.book.bids.prices, st.source.book.asks.prices
        out = [(BUY, top[0]), (SELL, top[2])]
        out += [(BUY, p) for p in bids[bisect_right(bids, top[0]) :]]
        out += [(SELL, p) for p in asks[: bisect_left(asks, top[2])]]
        return out

    @staticmethod
    def _live(st: _SymbolReplay) -> bool:
        return st.source.state == MdState.LIVE

    def _sync_all(self, symbol: str, st: _SymbolReplay) -> None:
        book = st.source.book
        prices = [(BUY, p) for p in book.bids.levels] + [(SELL, p) for p in book.asks.levels]
        prices += self._overlay(st)
        recorded = set(prices)
        prices += [key for key in st.levels if key not in recorded]  # gone from the book
        self._sync_levels(symbol, st, prices)

    def _sync_levels(
        self, symbol: str, st: _SymbolReplay, prices: Sequence[tuple[str, Decimal]]
    ) -> None:
        # shrink first, then grow: a level that moved from one side to the other never
        # meets its own stale house order
        grow: list[tuple[str, Decimal, Decimal]] = []
        live = self._live(st)
        level_qty, levels, zero = st.source.level_qty, st.levels, Decimal(0)
        for key in dict.fromkeys(prices):  # each level once, in order
            side, price = key
            held = levels.get(key)
            orders = [o for o in held if o.resting] if held else []
            have = zero
            for o in orders:
                have += o.remaining
            want = level_qty(side == BUY, price) if live else zero
            if want == have:
                if held is not None and len(orders) != len(held):  # some were filled
                    if orders:
                        levels[key] = orders
                    else:
                        del levels[key]
                continue
            if want < have:
                cut = have - want
                for order in reversed(orders):
                    take = min(cut, order.remaining)
                    self.engine.reduce_resting(order, take)
                    cut -= take
                    if not cut:
                        break
                orders = [o for o in orders if o.resting]
            elif want > have:
                grow.append((side, price, want - have))
            if orders:
                levels[key] = orders
            else:
                levels.pop(key, None)
        for side, price, qty in grow:
            try:
                order = self.engine.place_order(
                    self.house, symbol, side, LIMIT, quantity=qty, price=price, time_in_force=GTC
                )
            except EngineError as exc:  # e.g. a price outside the instrument's range
                self._skip(f"level refused: {exc.msg}")
                continue
            if order.resting:
                st.levels.setdefault((side, price), []).append(order)
        bid, ask = st.source.best(True), st.source.best(False)
        if bid is not None and ask is not None:
            st.mid = (bid + ask) / 2

    def _replay_trade(self, ev: Trade) -> None:
        if ev.side is None:
            self._skip("trade without aggressor")
            return
        try:
            self.engine.place_order(
                self.tape,
                ev.symbol,
                BUY if ev.side == "buy" else SELL,
                LIMIT,
                quantity=ev.quantity,
                price=ev.price,
                time_in_force=IOC,
            )
        except EngineError as exc:
            self._skip(f"trade refused: {exc.msg}")
