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
* the recorded ``bookTicker`` lines are not applied: the 100 ms depth diffs define the
  book, so that the simulator's book equals the book the recording rebuilds.

Time: replay time starts where every symbol's book is in sync (the recording's first
snapshots) and advances with the simulator's clock times ``speed``; while the market is paused (``POST /sim/market {"paused": true}``) it
stands still. At the end of the recording the book stays as it was, or, with ``loop``, the
recording starts again (the house book is re-synced from its snapshot).

Pure: no Django, no asyncio; the server calls :meth:`ReplayMarket.step` from its loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from backtest.data import Depth, Event, Issues, Snapshot, Trade, iter_events
from marketdata.book import Diff, L2Book, Outcome
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


@dataclass
class _SymbolReplay:
    """The recorded book of one symbol and the house orders that stand for it."""

    book: L2Book
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
            sid: _SymbolReplay(L2Book(sid), levels=old.levels) for sid, old in self.states.items()
        } or {sid: _SymbolReplay(L2Book(sid)) for sid in self.engine.instruments}

    def _prime(self, within_ns: int = 120 * 10**9) -> None:
        """Start where the recording has a book: apply events until every symbol's book is
        in sync (a handler records its streams before the snapshot they need), or for at
        most ``within_ns`` of recording; a simulator started paused then has its book."""
        assert self._pending is not None
        limit = self._pending.ts_ns + within_ns
        while self._pending is not None and self._pending.ts_ns <= limit and not self.loops:
            if all(st.book.in_sync for st in self.states.values()):
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
            "books": {sid: st.book.state.value for sid, st in self.states.items()},
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
                self.loops += 1
                self._restart()
                self.replay_ns = until_ns = self._pending.ts_ns if self._pending else until_ns
                continue
            if ev.ts_ns > until_ns:
                return applied
            self._apply(ev)
            self.events += 1
            applied += 1
            self._pending = next(self._events, None)

    def _skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1

    def _apply(self, ev: Event) -> None:
        st = self.states.get(ev.symbol)
        if st is None:
            self._skip("other symbol")
            return
        if isinstance(ev, Snapshot):
            outcome = st.book.apply_snapshot(ev.bids, ev.asks, ev.last_update_id)
            self._sync_all(ev.symbol, st)
            if outcome != Outcome.APPLIED:
                self._skip(f"snapshot {outcome.value.lower()}")
        elif isinstance(ev, Depth):
            outcome = st.book.apply_diff(Diff(ev.first_id, ev.last_id, ev.bids, ev.asks))
            if outcome == Outcome.APPLIED:
                prices = [(BUY, Decimal(p)) for p, _ in ev.bids]
                prices += [(SELL, Decimal(p)) for p, _ in ev.asks]
                self._sync_levels(ev.symbol, st, prices)
            elif outcome in (Outcome.GAP, Outcome.CROSSED):
                self._sync_all(ev.symbol, st)  # the book is gone until the next snapshot
        elif isinstance(ev, Trade):
            self._replay_trade(ev)
        else:
            self._skip(type(ev).__name__.lower())

    # ------------------------------------------------------------------ the house book

    def _recorded(self, st: _SymbolReplay, side: str, price: Decimal) -> Decimal:
        levels = (st.book.bids if side == BUY else st.book.asks).levels
        return levels.get(price, Decimal(0))

    def _sync_all(self, symbol: str, st: _SymbolReplay) -> None:
        prices = [(BUY, p) for p in st.book.bids.levels] + [(SELL, p) for p in st.book.asks.levels]
        recorded = set(prices)
        prices += [key for key in st.levels if key not in recorded]  # gone from the book
        self._sync_levels(symbol, st, prices)

    def _sync_levels(
        self, symbol: str, st: _SymbolReplay, prices: Sequence[tuple[str, Decimal]]
    ) -> None:
        # shrink first, then grow: a level that moved from one side to the other never
        # meets its own stale house order
        grow: list[tuple[str, Decimal, Decimal]] = []
        for side, price in prices:
            orders = [o for o in st.levels.get((side, price), ()) if o.resting]
            have = sum((o.remaining for o in orders), Decimal(0))
            want = self._recorded(st, side, price)
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
                st.levels[(side, price)] = orders
            else:
                st.levels.pop((side, price), None)
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
        mid = st.book.mid()
        if mid is not None:
            st.mid = mid

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
