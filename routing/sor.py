"""The smart order router's planner (pure: no Django, no I/O, no clock of its own).

``plan(order, books, conditions, now)`` splits what is left of an order across venues:

* every venue named in ``conditions`` or publishing a book of the order's symbol is
  considered once and gets a :class:`VenueDecision` with the reason for what it got;
* a venue is skipped, with its reason, when it is not in ``conditions``, disabled (or
  does not list the symbol), its breaker is open, its rate limiter has no headroom, it
  publishes no book, its book is not LIVE (``VenueBook.effective_state``, or older than
  ``stale_after_s``), or it holds no balance for the order;
* the others' levels are swept best first by *effective* price: the fee-adjusted price
  (ask x (1 + fee) for a buy, bid x (1 - fee) for a sell) made worse by a small penalty
  in basis points for an old quote (``age_bp_per_s`` per second of age) and for a venue
  that fills badly (``(1 - score) x score_bp``). At one effective price the higher score,
  then the fresher quote, then the venue name goes first. A venue's levels are already
  sorted and its penalty is one factor, so the sweep merges the venues' sides as they
  are (a heap of at most one head per venue) and stops as soon as the order is covered;
* no level beyond the order's limit price is taken (buy: price <= limit; sell: >=);
* each venue's share is rounded down to its lot, capped by its balance (a buy locks
  price x quantity of quote, a sell the quantity of base), and dropped if below its
  minimum quantity or notional; what that frees is swept again over the remaining
  levels (a few passes at most: each pass only lowers caps);
* each child is an IOC limit pinned at the worst price planned at its venue, rounded to
  the venue's tick on the passive side (a buy down, a sell up), so a quote that vanished
  leaves the child unfilled instead of walking the book.

``rest_venue`` (GTC limit orders only) is where the remainder should rest: the venue
that may trade with the best effective price on the side the order takes, whose lot,
minimums and balance (less what its child spends) admit the remainder at the limit.
``unroutable`` is set when no venue may trade at all:
``NO_ROUTE: sim-a breaker open; sim-b market data STALE (age 3.1 s)``. A venue that may
trade but has nothing within the limit is not a reason for NO_ROUTE: the order can rest.

A FOK order whose full quantity cannot be routed gets no children.

Every decision shows the venue's best price on the side the order takes, its
fee-adjusted price (fee only; the penalties appear in the reason), the quantity its
book shows within the limit (also for a skipped venue, to show what was passed over),
the quote's age and the venue's score.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from operator import itemgetter
from typing import Any

from marketdata.book import MdState
from marketdata.consolidated import VenueBook

ZERO = Decimal(0)
ONE = Decimal(1)
BP = Decimal("0.0001")
SIDES = ("buy", "sell")
TYPES = ("market", "limit")
TIME_IN_FORCE = ("GTC", "IOC", "FOK")
_PRICE = itemgetter(0)
_QTY = itemgetter(1)


def _neg_price(level: tuple[Decimal, Decimal]) -> Decimal:
    return -level[0]


@dataclass(frozen=True, slots=True)
class OrderSpec:
    symbol: str
    side: str  # "buy" | "sell"
    type: str  # "market" | "limit"
    quantity: Decimal  # what is left to route (the parent's leaves in later rounds)
    limit_price: Decimal | None = None  # never route beyond it (buy: price <= limit; sell: >=)
    time_in_force: str = "GTC"  # GTC | IOC | FOK


@dataclass(frozen=True, slots=True)
class VenueCondition:
    venue: str
    taker_fee: Decimal = Decimal(0)  # fraction: 0.001 = 10 bp
    lot_size: Decimal = Decimal(0)  # quantity step (0: none)
    min_qty: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)  # price x quantity of one child
    tick_size: Decimal = Decimal(0)
    # available at the venue: quote currency for a buy, base for a sell; None = unknown
    balance: Decimal | None = None
    breaker_open: bool = False
    rate_headroom: int = 1  # order requests the venue's rate limiter allows now; 0 = none
    enabled: bool = True  # enabled and lists the symbol
    score: Decimal = Decimal(1)  # 0..1 from our own fills; 1 = no evidence against it


@dataclass(frozen=True, slots=True)
class Weights:
    """How quote age and venue score worsen a venue's effective price (basis points)."""

    age_bp_per_s: Decimal = Decimal("0.5")  # per second of quote age
    score_bp: Decimal = Decimal(5)  # at score 0; (1 - score) x this in general


DEFAULT_WEIGHTS = Weights()


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class VenueDecision:
    """One per venue considered (the API's ``route[].venues``)."""

    venue: str
    price: Decimal | None  # best price on the side the order takes at that venue (raw)
    fee_adjusted_price: Decimal | None
    available: Decimal  # quantity on that venue's book up to the limit
    age_ms: int | None  # quote age
    score: Decimal
    quantity: Decimal  # quantity routed there (0 if skipped)
    reason: str  # why it got what it got, or why it was skipped

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "price": _dec(self.price),
            "fee_adjusted_price": _dec(self.fee_adjusted_price),
            "available": str(self.available),
            "age_ms": self.age_ms,
            "score": str(self.score),
            "quantity": str(self.quantity),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Child:
    venue: str
    quantity: Decimal  # a multiple of the venue's lot, >= min_qty, price x qty >= min_notional
    price: Decimal  # IOC limit pinned at the planned worst price at that venue

    def to_json(self) -> dict[str, Any]:
        return {"venue": self.venue, "quantity": str(self.quantity), "price": str(self.price)}


@dataclass(frozen=True, slots=True)
class Plan:
    children: tuple[Child, ...]  # IOC marketable limits, total <= order.quantity
    venues: tuple[VenueDecision, ...]  # every venue considered, with a reason
    rest_venue: str | None  # where a GTC limit remainder should rest, None if none
    unroutable: str | None  # "NO_ROUTE: ..." when no venue may trade

    @property
    def routed(self) -> Decimal:
        return sum((c.quantity for c in self.children), ZERO)

    def to_json(self) -> dict[str, Any]:
        return {
            "children": [c.to_json() for c in self.children],
            "venues": [v.to_json() for v in self.venues],
            "rest_venue": self.rest_venue,
            "unroutable": self.unroutable,
        }


def fmt(value: Decimal) -> str:
    """A decimal as plain digits (``10``, not ``1E+1``) for reasons."""
    return f"{value.normalize():f}" if value else "0"


def plain(value: Decimal) -> Decimal:
    """The same number without trailing zeros and never in exponent form: a child's
    quantity summed from levels (0.3 + 0.20000) reads 0.5, as the order's did."""
    if value == value.to_integral_value():
        return value.quantize(ONE)
    return value.normalize()


def floor_step(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded down to a multiple of ``step`` (unchanged when step is 0). A
    value already on the step is returned as it is, so ``1.5`` on a 0.001 lot stays
    ``1.5`` (not ``1.500``)."""
    if step <= 0:
        return value
    down = (value // step) * step
    return value if down == value else down


def ceil_step(value: Decimal, step: Decimal) -> Decimal:
    """``value`` rounded up to a multiple of ``step`` (as :func:`floor_step`)."""
    if step <= 0:
        return value
    down = (value // step) * step
    return value if down == value else down + step


class _Venue:
    """A venue that may trade, while planning (mutable working state)."""

    __slots__ = (
        "name",
        "cond",
        "levels",
        "depth",
        "mult",
        "tie",
        "head",
        "available",
        "age_ms",
        "penalty_bp",
        "cap",
        "cap_reason",
        "note",
        "taken",
        "worst",
        "used",
    )

    def __init__(
        self, name: str, cond: VenueCondition, levels: list[tuple[Decimal, Decimal]]
    ) -> None:
        self.name = name
        self.cond = cond
        self.levels = levels
        self.depth = 0  # levels within the limit
        self.mult = ONE  # effective price = raw x mult
        self.tie: tuple[Decimal, int, str] = (ZERO, 0, name)
        self.head: Decimal | None = None  # effective price of the best level
        self.available = ZERO
        self.age_ms = 0
        self.penalty_bp = ZERO
        self.cap: Decimal | None = None  # most this venue may get (lot, minimums)
        self.cap_reason = ""  # why the cap is 0
        self.note = ""  # why the venue got less than its levels offered
        self.taken = ZERO
        self.worst: Decimal | None = None
        self.used = 0  # levels touched


def _validate(order: OrderSpec) -> None:
    if order.side not in SIDES:
        raise ValueError(f"side must be one of {', '.join(SIDES)}, not {order.side!r}")
    if order.type not in TYPES:
        raise ValueError(f"type must be one of {', '.join(TYPES)}, not {order.type!r}")
    if order.time_in_force not in TIME_IN_FORCE:
        raise ValueError(f"time_in_force must be one of {', '.join(TIME_IN_FORCE)}")
    if not order.quantity.is_finite() or order.quantity <= 0:
        raise ValueError(f"quantity must be positive, not {order.quantity}")
    limit = order.limit_price
    if order.type == "limit" and (limit is None or not limit.is_finite() or limit <= 0):
        raise ValueError(f"a limit order needs a positive limit_price, not {limit}")


def _skip_reason(
    cond: VenueCondition | None,
    book: VenueBook | None,
    symbol: str,
    now: float,
    stale_after_s: float | None,
) -> str | None:
    """Why a venue may not trade now, or None. One reason: the first that applies."""
    if cond is None:
        return "not configured for routing (no venue conditions)"
    if not cond.enabled:
        return f"disabled or does not list {symbol}"
    if cond.breaker_open:
        return "breaker open"
    if cond.rate_headroom <= 0:
        return "no rate-limit headroom"
    if book is None:
        return "no market data"
    state = book.effective_state(now)
    age = book.age_s(now)
    if state == MdState.LIVE and stale_after_s is not None and age > stale_after_s:
        state = MdState.STALE
    if state != MdState.LIVE:
        why = book.reason if state == book.state and book.reason else ""
        return f"market data {state} (age {age:.1f} s{': ' + why if why else ''})"
    if cond.balance is not None and cond.balance <= 0:
        return f"no balance ({fmt(cond.balance)} available)"
    return None


def plan(
    order: OrderSpec,
    books: Sequence[VenueBook],
    conditions: Mapping[str, VenueCondition],
    now: float,
    *,
    stale_after_s: float | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
) -> Plan:
    """The children and per-venue decisions for ``order`` (see the module docstring).

    ``now`` is on the books' clock (``VenueBook.ts``). ``stale_after_s``, if given, makes
    a book older than that STALE even within its venue's own interval (it tightens,
    never loosens, ``VenueBook.effective_state``). ``weights`` sets the age and score
    penalties. Raises ``ValueError`` naming the field for an order that makes no sense
    (unknown side, type or time in force; quantity not positive; a limit order without
    a positive limit price)."""
    _validate(order)
    buy = order.side == "buy"
    limit = order.limit_price if order.type == "limit" else None

    by_venue: dict[str, VenueBook] = {}
    for published in books:
        if published.symbol == order.symbol:
            seen = by_venue.get(published.venue)
            if seen is None or published.ts > seen.ts:
                by_venue[published.venue] = published
    names = sorted(set(conditions) | set(by_venue))

    skipped: dict[str, str] = {}
    active: list[_Venue] = []
    for name in names:
        cond = conditions.get(name)
        book = by_venue.get(name)
        why = _skip_reason(cond, book, order.symbol, now, stale_after_s)
        if why is not None:
            skipped[name] = why
            continue
        assert cond is not None and book is not None
        active.append(_prepare(name, cond, book, buy, limit, book.age_s(now), weights))

    if not active:
        states = "; ".join(f"{n} {skipped[n]}" for n in names) or f"no venue for {order.symbol}"
        decisions = tuple(
            _skipped_decision(n, conditions.get(n), by_venue.get(n), buy, limit, now, skipped[n])
            for n in names
        )
        return Plan((), decisions, None, f"NO_ROUTE: {states}")

    children = _allocate(order.quantity, active, buy)
    fok_short = ""
    if order.time_in_force == "FOK":
        total = sum((c.quantity for c in children), ZERO)
        if total < order.quantity:
            fok_short = f"FOK: only {fmt(total)} of {fmt(order.quantity)} routable now"
            children = []

    routed = {c.venue: c for c in children}
    decisions_by_name: dict[str, VenueDecision] = {}
    for v in active:
        decisions_by_name[v.name] = _active_decision(v, routed.get(v.name), buy, limit, fok_short)
    for name, why in skipped.items():
        decisions_by_name[name] = _skipped_decision(
            name, conditions.get(name), by_venue.get(name), buy, limit, now, why
        )
    remainder = order.quantity - sum((c.quantity for c in children), ZERO)
    rest = None
    if limit is not None and order.time_in_force == "GTC":
        rest = _rest_venue(active, routed, remainder, limit, buy)
    return Plan(
        tuple(children),
        tuple(decisions_by_name[n] for n in names),
        rest,
        None,
    )


def _prepare(
    name: str,
    cond: VenueCondition,
    book: VenueBook,
    buy: bool,
    limit: Decimal | None,
    age_s: float,
    weights: Weights,
) -> _Venue:
    levels = book.asks if buy else book.bids
    v = _Venue(name, cond, levels)
    v.depth, v.available = _within(levels, limit, buy)
    v.age_ms = age_ms = round(age_s * 1000)
    score = cond.score
    if score >= ONE:
        score, penalty = ONE, ZERO
    else:
        score = max(ZERO, score)
        penalty = (ONE - score) * weights.score_bp
    if age_ms:
        penalty += age_ms * weights.age_bp_per_s / 1000
    v.penalty_bp = penalty
    fee = cond.taker_fee
    if buy:
        v.mult = (ONE + fee) * (ONE + penalty * BP) if penalty else ONE + fee
    else:
        # sells sort on the negated effective price, so that the heap pops the best first
        v.mult = (fee - ONE) * (ONE - penalty * BP) if penalty else fee - ONE
    v.tie = (-score, age_ms, name)
    if levels:
        v.head = levels[0][0] * v.mult
    return v


def _rank(v: _Venue) -> tuple[bool, Decimal, tuple[Decimal, int, str]]:
    """Venues best effective price first, those with an empty side last."""
    return (v.head is None, ZERO if v.head is None else v.head, v.tie)


def _within(
    levels: list[tuple[Decimal, Decimal]], limit: Decimal | None, buy: bool
) -> tuple[int, Decimal]:
    """How many of a side's levels are within the limit, and their quantity."""
    if limit is None:
        return len(levels), sum(map(_QTY, levels), ZERO)
    if buy:  # asks ascending
        depth = bisect_right(levels, limit, key=_PRICE)
    else:  # bids descending
        depth = bisect_right(levels, -limit, key=_neg_price)
    return depth, sum(map(_QTY, islice(levels, depth)), ZERO)


def _sweep(quantity: Decimal, active: list[_Venue], buy: bool) -> None:
    """Take levels best effective price first until ``quantity`` is covered, within each
    venue's cap and balance. Sets each venue's ``taken``, ``worst`` and ``used``."""
    heap: list[tuple[Decimal, tuple[Decimal, int, str], int]] = []
    for i, v in enumerate(active):
        v.taken, v.worst, v.used = ZERO, None, 0
        if v.depth and v.head is not None and (v.cap is None or v.cap > 0):
            heap.append((v.head, v.tie, i))
    heapq.heapify(heap)
    remaining = quantity
    while remaining > 0 and heap:
        _, _, i = heap[0]
        v = active[i]
        price, qty = v.levels[v.used]
        room = remaining if v.cap is None else min(remaining, v.cap - v.taken)
        balance = v.cond.balance
        if balance is not None:
            afford = (balance / price if buy else balance) - v.taken
            room = min(room, afford)
        take = min(qty, room)
        if take > 0:
            v.taken += take
            v.worst = price
            remaining -= take
        if take < qty:  # the venue's cap or balance, or the order, is used up
            if remaining > 0 and balance is not None and v.cap is None:
                v.note = f"capped by balance {fmt(balance)}"
            v.used += take > 0
            heapq.heappop(heap)
            continue
        v.used += 1
        if v.used < v.depth:
            heapq.heapreplace(heap, (v.levels[v.used][0] * v.mult, v.tie, i))
        else:
            heapq.heappop(heap)


def _child(v: _Venue, buy: bool) -> tuple[Child | None, str]:
    """The child this venue's share becomes and why it is smaller than the share, or
    None and why there is none."""
    cond = v.cond
    assert v.worst is not None
    price = floor_step(v.worst, cond.tick_size) if buy else ceil_step(v.worst, cond.tick_size)
    qty = floor_step(v.taken, cond.lot_size)
    note = f"rounded to lot {fmt(cond.lot_size)}" if qty < v.taken else ""
    if qty <= 0 or price <= 0:
        return None, f"below lot size {fmt(cond.lot_size)}"
    if qty < cond.min_qty:
        return None, f"below min qty {fmt(cond.min_qty)}"
    if price * qty < cond.min_notional:
        return None, f"below min notional {fmt(cond.min_notional)}"
    return Child(v.name, plain(qty), plain(price)), note


def _allocate(quantity: Decimal, active: list[_Venue], buy: bool) -> list[Child]:
    """Sweep, turn shares into valid children, re-sweep what lot rounding or a minimum
    freed (caps only go down, so this ends; bounded anyway)."""
    for v in active:
        v.cap, v.cap_reason, v.note = None, "", ""
    children: list[Child] = []
    # children best venue first (the order a caller should send them in)
    ranked = sorted(active, key=_rank)
    for _ in range(2 * len(active) + 2):
        _sweep(quantity, active, buy)
        children = []
        changed = False
        for v in ranked:
            if v.taken <= 0:
                continue
            child, why = _child(v, buy)
            if child is None:
                v.cap, v.cap_reason, changed = ZERO, why, True
                continue
            children.append(child)
            if child.quantity < v.taken:
                v.cap, changed = child.quantity, True
                if not v.note:
                    v.note = why
        if not changed:
            break
    return children


def _active_decision(
    v: _Venue, child: Child | None, buy: bool, limit: Decimal | None, fok_short: str
) -> VenueDecision:
    cond = v.cond
    best = v.levels[0][0] if v.levels else None
    fee_adjusted = None
    if best is not None:
        fee_adjusted = best * (ONE + cond.taker_fee if buy else ONE - cond.taker_fee)
    side = "asks" if buy else "bids"
    if child is not None:
        levels = f"{v.used} level{'s' if v.used != 1 else ''}"
        reason = f"routed {fmt(child.quantity)} up to {fmt(child.price)} over {levels}"
        if v.note:
            reason += f" ({v.note})"
    elif fok_short and v.taken > 0 and not v.cap_reason:
        reason = fok_short
    elif v.cap_reason:
        reason = v.cap_reason
    elif not v.levels:
        reason = f"no {side} on the book"
    elif v.depth == 0 and limit is not None:
        reason = f"no {side} {'at or below' if buy else 'at or above'} limit {fmt(limit)}"
    else:
        reason = "worse fee-adjusted price"
        if v.penalty_bp:
            reason += f" (incl. {v.penalty_bp:.2f} bp for quote age and score)"
    return VenueDecision(
        venue=v.name,
        price=best,
        fee_adjusted_price=fee_adjusted,
        available=v.available,
        age_ms=v.age_ms,
        score=cond.score,
        quantity=child.quantity if child is not None else ZERO,
        reason=reason,
    )


def _skipped_decision(
    name: str,
    cond: VenueCondition | None,
    book: VenueBook | None,
    buy: bool,
    limit: Decimal | None,
    now: float,
    reason: str,
) -> VenueDecision:
    """A venue that may not trade: what its book shows (if any), and why not."""
    best = None
    fee_adjusted = None
    age_ms = None
    available = ZERO
    if book is not None:
        available = _within(book.asks if buy else book.bids, limit, buy)[1]
        best = book.best_ask if buy else book.best_bid
        age_ms = round(book.age_s(now) * 1000)
        fee = cond.taker_fee if cond is not None else book.taker_fee
        if best is not None:
            fee_adjusted = best * (ONE + fee if buy else ONE - fee)
    return VenueDecision(
        venue=name,
        price=best,
        fee_adjusted_price=fee_adjusted,
        available=available,
        age_ms=age_ms,
        score=cond.score if cond is not None else ONE,
        quantity=ZERO,
        reason=reason,
    )


def _rest_venue(
    active: list[_Venue],
    routed: Mapping[str, Child],
    remainder: Decimal,
    limit: Decimal,
    buy: bool,
) -> str | None:
    """The venue with the best effective price on the side the order takes (venues
    with an empty side last) whose constraints admit the remainder at the limit."""

    for v in sorted(active, key=_rank):
        if remainder <= 0:
            return v.name
        cond = v.cond
        qty = floor_step(remainder, cond.lot_size)
        price = floor_step(limit, cond.tick_size) if buy else ceil_step(limit, cond.tick_size)
        if qty <= 0 or qty < cond.min_qty or price * qty < cond.min_notional:
            continue
        if cond.balance is not None:
            child = routed.get(v.name)
            spent = (
                ZERO if child is None else (child.price * child.quantity if buy else child.quantity)
            )
            if (price * qty if buy else qty) > cond.balance - spent:
                continue
        return v.name
    return None
