"""An L2 order book per venue and symbol, built from a snapshot plus diffs (pure).

Binance's sequencing rules (``GET /api/v3/depth`` + ``<symbol>@depth``):

* diffs that arrive before the snapshot are buffered;
* diffs whose last update id ``u`` is at or below the snapshot's ``lastUpdateId`` are
  dropped (the snapshot already holds them);
* the first diff applied must straddle the snapshot: ``U <= lastUpdateId + 1 <= u``;
* each later diff starts where the previous ended: ``U == previous u + 1``.

A diff that breaks the chain is a gap: the book is cleared and marked ``RESYNCING``
until a fresh snapshot arrives (diffs keep being buffered meanwhile so the snapshot can
be bridged). A book that would be crossed after an update is not used either: it goes to
``RESYNCING`` too. Venues without diffs feed full snapshots (REST polling) or top-of-book
updates. Quantities of zero remove the level.

Each side is a dict ``price -> quantity`` plus a sorted list of its prices kept with
``bisect``: an update is a dict write and, only for a new or vanished price, one
insertion or deletion in the list; best bid and ask are the list's ends.

No Django, no I/O: the handler process, the tests and the backtester use it alike.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

ZERO = Decimal(0)
MAX_BUFFERED_DIFFS = 10_000  # a snapshot that never comes must not grow memory forever

# Price text -> Decimal, shared by every book of the process (bounded: cleared when full).
_PRICES: dict[str, Decimal] = {}
MAX_PARSED_PRICES = 100_000
# A removed level's quantity as Binance and the simulated exchange write it.
ZERO_TEXTS = frozenset({"0.00000000", "0"})

# A level as it comes off the wire: (price, quantity) as strings or Decimals.
RawLevel = Sequence[str | Decimal]


class MdState(StrEnum):
    """A venue's book for one symbol, as risk, routing and the blotter see it."""

    LIVE = "LIVE"  # in sync and updated within the venue's expected interval
    STALE = "STALE"  # in sync, but nothing heard for longer than the expected interval
    RESYNCING = "RESYNCING"  # no usable book: waiting for a (fresh) snapshot
    DOWN = "DOWN"  # no connection to the venue


class Outcome(StrEnum):
    """What one update did to the book."""

    APPLIED = "APPLIED"
    BUFFERED = "BUFFERED"  # no snapshot yet: kept for when it comes
    IGNORED_OLD = "IGNORED_OLD"  # older than the book: nothing to do
    GAP = "GAP"  # a missed diff: the book is RESYNCING
    SNAPSHOT_TOO_OLD = "SNAPSHOT_TOO_OLD"  # snapshot older than the buffered diffs
    CROSSED = "CROSSED"  # the update left best bid >= best ask: RESYNCING
    IGNORED = "IGNORED"  # a top-of-book update to a sequenced book that is resyncing


@dataclass(frozen=True)
class Diff:
    """One ``depthUpdate``: levels changed between update ids ``first_id`` and ``last_id``."""

    first_id: int  # Binance ``U``
    last_id: int  # Binance ``u``
    bids: Sequence[RawLevel]
    asks: Sequence[RawLevel]


class BookSide:
    """One side of the book: ``price -> quantity`` and the prices sorted ascending."""

    __slots__ = ("is_bid", "levels", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[Decimal, Decimal] = {}
        self.prices: list[Decimal] = []

    def clear(self) -> None:
        self.levels.clear()
        self.prices.clear()

    def set(self, price: Decimal, qty: Decimal) -> None:
        levels = self.levels
        if qty == ZERO:
            if price in levels:
                del levels[price]
                prices = self.prices
                del prices[bisect_left(prices, price)]
            return
        if price not in levels:
            insort(self.prices, price)
        levels[price] = qty

    def update(self, raw: Iterable[RawLevel]) -> None:
        # ``set`` inlined: this loop is the hot path of every diff. Parsing is most of its
        # cost: the same prices come back diff after diff, so their text is parsed once
        # (``_PRICES``); a removal's quantity as the venue writes it is not parsed at all.
        # A removal written as one of ``ZERO_TEXTS`` skips the quantity's parse and test.
        levels, prices = self.levels, self.prices
        parsed = _PRICES
        zeros = ZERO_TEXTS
        for level in raw:
            text, qty_text = level[0], level[1]
            if type(text) is str:
                price = parsed.get(text)
                if price is None:
                    price = parsed[text] = Decimal(text)
                    if len(parsed) > MAX_PARSED_PRICES:
                        parsed.clear()
                        parsed[text] = price
            else:
                price = Decimal(text)
            if qty_text in zeros:
                if price in levels:
                    del levels[price]
                    del prices[bisect_left(prices, price)]
                continue
            qty = Decimal(qty_text)
            if qty:
                if price not in levels:
                    insort(prices, price)
                levels[price] = qty
            elif price in levels:
                del levels[price]
                del prices[bisect_left(prices, price)]

    def best(self) -> tuple[Decimal, Decimal] | None:
        if not self.prices:
            return None
        price = self.prices[-1] if self.is_bid else self.prices[0]
        return price, self.levels[price]

    def top(self, n: int) -> list[tuple[Decimal, Decimal]]:
        """The best ``n`` levels, best first."""
        prices = self.prices
        chosen = prices[: -n - 1 : -1] if self.is_bid else prices[:n]
        return [(p, self.levels[p]) for p in chosen]

    def trim_better_than(self, price: Decimal) -> None:
        """Remove levels better than ``price`` (a top-of-book update says they are gone)."""
        prices = self.prices
        if self.is_bid:
            cut = bisect_left(prices, price)
            while len(prices) > cut and prices[-1] > price:
                del self.levels[prices.pop()]
        else:
            cut = bisect_left(prices, price)
            for p in prices[:cut]:
                del self.levels[p]
            del prices[:cut]

    def __len__(self) -> int:
        return len(self.prices)


@dataclass
class L2Book:
    """The book of one venue and symbol, with its sync state (``LIVE`` or ``RESYNCING``).

    The builder only knows whether the book is in sync; ``STALE`` (time) and ``DOWN``
    (connection) are the handler's judgement on top of it.
    """

    symbol: str
    bids: BookSide = field(default_factory=lambda: BookSide(is_bid=True))
    asks: BookSide = field(default_factory=lambda: BookSide(is_bid=False))
    last_update_id: int | None = None
    state: MdState = MdState.RESYNCING
    reason: str = "no snapshot yet"
    buffered: list[Diff] = field(default_factory=list)
    # True once a diff has been applied since the snapshot (the straddle rule is met)
    _chained: bool = False
    # True once the venue gave update ids: its book comes from snapshot + diffs only
    _sequenced: bool = False

    # ------------------------------------------------------------------ reading

    @property
    def in_sync(self) -> bool:
        return self.state == MdState.LIVE

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        return self.bids.best()

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        return self.asks.best()

    def mid(self) -> Decimal | None:
        bid, ask = self.bids.best(), self.asks.best()
        if bid is None or ask is None:
            return None
        return (bid[0] + ask[0]) / 2

    def top(self, n: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        return self.bids.top(n), self.asks.top(n)

    # ------------------------------------------------------------------ updating

    def apply_snapshot(
        self,
        bids: Iterable[RawLevel],
        asks: Iterable[RawLevel],
        last_update_id: int | None = None,
    ) -> Outcome:
        """A full book (``GET /api/v3/depth`` or a polled ``fetch_order_book``).

        ``last_update_id`` is the venue's sequence where it has one: then buffered diffs
        are bridged onto the snapshot, and a snapshot older than the book or than the
        buffered diffs is refused with a clear reason.
        """
        if (
            last_update_id is not None
            and self.in_sync
            and self.last_update_id is not None
            and last_update_id < self.last_update_id
        ):
            return Outcome.IGNORED_OLD
        pending = self.buffered
        if last_update_id is not None:
            self._sequenced = True
            pending = [d for d in pending if d.last_id > last_update_id]
            if pending and pending[0].first_id > last_update_id + 1:
                self.buffered = pending
                self._resync(
                    f"snapshot {last_update_id} older than buffered diffs"
                    f" (first U={pending[0].first_id}); need a fresh snapshot"
                )
                return Outcome.SNAPSHOT_TOO_OLD
        self.bids.clear()
        self.asks.clear()
        self.bids.update(bids)
        self.asks.update(asks)
        self.last_update_id = last_update_id
        self.buffered = []
        self._chained = False
        if self._crossed():
            self._resync("snapshot is crossed")
            return Outcome.CROSSED
        self.state, self.reason = MdState.LIVE, ""
        for diff in pending:
            outcome = self.apply_diff(diff)
            if outcome != Outcome.APPLIED:
                return outcome
        return Outcome.APPLIED

    def apply_diff(self, diff: Diff) -> Outcome:
        """One diff, under Binance's ``U``/``u`` rules (see the module docstring)."""
        self._sequenced = True
        if not self.in_sync:
            if len(self.buffered) >= MAX_BUFFERED_DIFFS:
                del self.buffered[0]
            self.buffered.append(diff)
            return Outcome.BUFFERED
        last = self.last_update_id
        if last is not None:
            if diff.last_id <= last:
                return Outcome.IGNORED_OLD
            expected = last + 1
            ok = (
                diff.first_id == expected
                if self._chained
                else diff.first_id <= expected <= diff.last_id
            )
            if not ok:
                self._resync(f"gap: expected update {expected}, diff starts at {diff.first_id}")
                self.buffered = [diff]
                return Outcome.GAP
        self.bids.update(diff.bids)
        self.asks.update(diff.asks)
        self.last_update_id = diff.last_id
        self._chained = True
        if self._crossed():
            self._resync(f"book crossed after update {diff.last_id}")
            return Outcome.CROSSED
        return Outcome.APPLIED

    def apply_top(self, bid: RawLevel | None, ask: RawLevel | None) -> Outcome:
        """A top-of-book update (best bid and ask with quantities).

        Levels better than the new best are gone; the best level's quantity is set. A
        venue that only sends the top has a one-level book this way.
        """
        if self._sequenced and not self.in_sync:
            return Outcome.IGNORED
        if bid is not None:
            price = Decimal(bid[0])
            self.bids.trim_better_than(price)
            self.bids.set(price, Decimal(bid[1]))
        if ask is not None:
            price = Decimal(ask[0])
            self.asks.trim_better_than(price)
            self.asks.set(price, Decimal(ask[1]))
        if self._crossed():
            self._resync("top of book crossed")
            return Outcome.CROSSED
        if not self.in_sync and self.bids and self.asks:
            self.state, self.reason = MdState.LIVE, ""  # a top-only venue has no snapshot
        return Outcome.APPLIED

    def resync(self, reason: str) -> None:
        """Throw the book away and wait for a fresh snapshot (e.g. the stream dropped)."""
        self._resync(reason)
        self.buffered = []

    # ------------------------------------------------------------------ internals

    def _crossed(self) -> bool:
        bid, ask = self.bids.prices, self.asks.prices
        return bool(bid) and bool(ask) and bid[-1] >= ask[0]

    def _resync(self, reason: str) -> None:
        self.bids.clear()
        self.asks.clear()
        self.last_update_id = None
        self._chained = False
        self.state = MdState.RESYNCING
        self.reason = reason
