"""Venue books as published, and the consolidated book across venues (pure).

``VenueBook`` is what the handler publishes per venue and symbol (``marketdata.store``
reads it back from Redis). Its ``effective_state`` is the published state, except that a
book not refreshed for longer than its venue's expected interval is ``STALE`` whatever it
says: a handler that died cannot keep a frozen book LIVE.

``consolidate`` merges the LIVE venues' levels by price (bids high to low, asks low to
high; at one price the cheaper venue after fees first). Each level carries its venue, raw
price, fee-adjusted price (what a taker pays or gets: ask x (1 + fee), bid x (1 - fee)),
quantity and age. The market is *crossed* when one venue's fee-adjusted best bid is above
another venue's fee-adjusted best ask (raw prices of two venues cross often by a fraction
of a basis point; net of fees that is an opportunity, and rare).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from marketdata.book import MdState

ONE = Decimal(1)
DEFAULT_INTERVAL_S = 2.0


@dataclass(frozen=True)
class VenueBook:
    venue: str
    symbol: str
    state: MdState
    reason: str = ""
    bids: list[tuple[Decimal, Decimal]] = field(default_factory=list)
    asks: list[tuple[Decimal, Decimal]] = field(default_factory=list)
    seq: int | None = None  # the venue's update id
    exchange_ts_ms: int | None = None  # the venue's event time
    received_ts: float | None = None  # when the handler received the newest update
    ts: float = 0.0  # when the handler last published or confirmed this book
    interval_s: float = DEFAULT_INTERVAL_S
    taker_fee: Decimal = Decimal(0)
    last_trade: dict[str, Any] | None = None
    source: str = ""  # "stream" or "poll"

    def age_s(self, now: float) -> float:
        return max(0.0, now - self.ts)

    def effective_state(self, now: float) -> MdState:
        if self.state == MdState.LIVE and self.age_s(now) > self.interval_s:
            return MdState.STALE
        return self.state

    def describe(self, now: float) -> str:
        """``sim-a BTC/USDT market data is STALE (age 3.2 s: ...)`` for denials and logs."""
        state = self.effective_state(now)
        why = self.reason if state == self.state else "no update within the expected interval"
        text = f"{self.venue} {self.symbol} market data is {state} (age {self.age_s(now):.1f} s"
        return text + (f": {why})" if why else ")")

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0][0] if self.asks else None

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "state": str(self.state),
            "reason": self.reason,
            "bids": [[str(p), str(q)] for p, q in self.bids],
            "asks": [[str(p), str(q)] for p, q in self.asks],
            "bid": None if self.best_bid is None else str(self.best_bid),
            "ask": None if self.best_ask is None else str(self.best_ask),
            "mid": None if (m := mid_of(self.best_bid, self.best_ask)) is None else str(m),
            "seq": self.seq,
            "exchange_ts_ms": self.exchange_ts_ms,
            "received_ts": self.received_ts,
            "ts": self.ts,
            "interval_s": self.interval_s,
            "taker_fee": str(self.taker_fee),
            "last_trade": self.last_trade,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> VenueBook:
        def levels(raw: Any) -> list[tuple[Decimal, Decimal]]:
            return [(Decimal(p), Decimal(q)) for p, q in raw or []]

        return cls(
            venue=str(data["venue"]),
            symbol=str(data["symbol"]),
            state=MdState(data["state"]),
            reason=str(data.get("reason") or ""),
            bids=levels(data.get("bids")),
            asks=levels(data.get("asks")),
            seq=data.get("seq"),
            exchange_ts_ms=data.get("exchange_ts_ms"),
            received_ts=data.get("received_ts"),
            ts=float(data["ts"]),
            interval_s=float(data.get("interval_s") or DEFAULT_INTERVAL_S),
            taker_fee=Decimal(str(data.get("taker_fee") or 0)),
            last_trade=data.get("last_trade"),
            source=str(data.get("source") or ""),
        )


@dataclass(frozen=True)
class Level:
    venue: str
    price: Decimal
    adjusted_price: Decimal
    quantity: Decimal
    age_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "price": str(self.price),
            "fee_adjusted_price": str(self.adjusted_price),
            "quantity": str(self.quantity),
            "age_ms": self.age_ms,
        }


@dataclass(frozen=True)
class Consolidated:
    symbol: str
    bids: list[Level]
    asks: list[Level]
    crossed: bool
    venues: list[str]  # the LIVE venues merged

    @property
    def best_bid(self) -> Level | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Level | None:
        return self.asks[0] if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return mid_of(bid and bid.price, ask and ask.price)


def mid_of(bid: Decimal | None, ask: Decimal | None) -> Decimal | None:
    if bid is None or ask is None:
        return None
    return (bid + ask) / 2


def consolidate(
    symbol: str, books: Iterable[VenueBook], now: float, depth: int | None = None
) -> Consolidated:
    """The LIVE venues' levels of ``symbol`` merged by price (see the module docstring)."""
    live = [b for b in books if b.symbol == symbol and b.effective_state(now) == MdState.LIVE]
    bids: list[Level] = []
    asks: list[Level] = []
    for book in live:
        age_ms = round(book.age_s(now) * 1000)
        fee = book.taker_fee
        bids += [Level(book.venue, p, p * (ONE - fee), q, age_ms) for p, q in book.bids]
        asks += [Level(book.venue, p, p * (ONE + fee), q, age_ms) for p, q in book.asks]
    bids.sort(key=lambda lv: (-lv.price, -lv.adjusted_price))
    asks.sort(key=lambda lv: (lv.price, lv.adjusted_price))
    crossed = False
    best_bid_by_venue = {b.venue: b.bids[0][0] * (ONE - b.taker_fee) for b in live if b.bids}
    best_ask_by_venue = {b.venue: b.asks[0][0] * (ONE + b.taker_fee) for b in live if b.asks}
    for venue_b, bid in best_bid_by_venue.items():
        for venue_a, ask in best_ask_by_venue.items():
            if venue_a != venue_b and bid > ask:
                crossed = True
    if depth is not None:
        bids, asks = bids[:depth], asks[:depth]
    return Consolidated(symbol, bids, asks, crossed, sorted(b.venue for b in live))


@dataclass(frozen=True)
class Reference:
    """Risk's reference price for an order: the consolidated mid of the LIVE venues.

    ``problem`` says why the reference is not to be trusted for a price-sensitive order:
    the order's venue has no LIVE book (naming the venue and its state), or no venue is
    LIVE. Without a LIVE venue the price falls back to the freshest stale mid (the collar
    still catches a fat finger) with its age.
    """

    price: Decimal | None
    age_s: float | None
    problem: str | None


def reference(symbol: str, books: Iterable[VenueBook], venue: str | None, now: float) -> Reference:
    books = [b for b in books if b.symbol == symbol]
    merged = consolidate(symbol, books, now)
    live = [b for b in books if b.venue in merged.venues]
    problem: str | None = None
    if venue is not None:
        own = next((b for b in books if b.venue == venue), None)
        if own is None:
            problem = f"no market data for {venue} {symbol}"
        elif own.effective_state(now) != MdState.LIVE:
            problem = own.describe(now)
    if merged.mid is not None:
        return Reference(merged.mid, min(b.age_s(now) for b in live), problem)
    if problem is None:
        states = "; ".join(b.describe(now) for b in books) or "no venue publishes a book"
        problem = f"no LIVE market data for {symbol} ({states})"
    fallback = [b for b in books if mid_of(b.best_bid, b.best_ask) is not None]
    if not fallback:
        return Reference(None, None, problem)
    freshest = min(fallback, key=lambda b: b.age_s(now))
    return Reference(mid_of(freshest.best_bid, freshest.best_ask), freshest.age_s(now), problem)
