"""Transaction-cost and venue-quality arithmetic (pure: no Django, no I/O).

Signs, one rule each, in basis points (1 bp = 0.01 %):

* **slippage** of a price against a reference (the arrival mid, or a child's planned
  price): ``side x (price - reference) / reference``, so **positive = cost** (a buy paid
  more, a sell got less);
* **effective spread** of a fill: ``2 x side x (price - mid at the fill) / mid`` (positive
  = paid half of it);
* **markout** of a fill at a horizon: ``side x (mid later - price) / price``, so
  **positive = good for us** (the market moved our way after we traded).

Figures of one order weight its fills by quantity (so the slippage of the order is the
slippage of its average price). Aggregates across orders weight each fill by its arrival
notional (quantity x the order's arrival mid, or x the fill price when the arrival mid is
unknown), so a large order counts more than a small one and symbols with different
prices add up.

The venue score (``venue_quality``) is documented with its formula in docs/TCA.md.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

BP = Decimal(10000)
ZERO = Decimal(0)
ONE = Decimal(1)
HORIZONS_S: tuple[int, ...] = (1, 5, 60)  # markout horizons of TCA (scores use 1 and 5)
SCORE_HORIZONS_S: tuple[int, ...] = (1, 5)
FIGURE_PLACES = Decimal("0.01")  # bp figures are shown to 1/100 bp
SCORE_PLACES = Decimal("0.0001")


def side_sign(side: str) -> int:
    if side == "buy":
        return 1
    if side == "sell":
        return -1
    raise ValueError(f"side must be buy or sell, not {side!r}")


def slippage_bp(side: str, price: Decimal, reference: Decimal) -> Decimal:
    """Positive = cost: a buy above the reference, a sell below it."""
    return side_sign(side) * (price - reference) / reference * BP


def effective_spread_bp(side: str, price: Decimal, mid: Decimal) -> Decimal:
    """Twice the signed distance from the mid at the fill (positive = cost)."""
    return 2 * side_sign(side) * (price - mid) / mid * BP


def markout_bp(side: str, price: Decimal, later_mid: Decimal) -> Decimal:
    """Positive = good for us: the mid moved our way after the fill."""
    return side_sign(side) * (later_mid - price) / price * BP


def fee_in_quote(
    fee: Decimal, fee_currency: str, *, base: str, quote: str, price: Decimal
) -> Decimal:
    """A fill's fee in the quote currency (the writer's rule for positions): a fee in the
    base asset is worth ``fee x price``; one in a third asset is not counted."""
    if not fee or not fee_currency or fee_currency == quote:
        return fee
    if fee_currency == base:
        return fee * price
    return ZERO


def _round(value: Decimal | None, places: Decimal = FIGURE_PLACES) -> Decimal | None:
    if value is None:
        return None
    rounded = value.quantize(places)
    return abs(rounded) if rounded.is_zero() else rounded  # never "-0"


def _weighted(pairs: Iterable[tuple[Decimal, Decimal | None]]) -> Decimal | None:
    """The weighted mean of the values that are known (None when none is)."""
    total = weight = ZERO
    for w, value in pairs:
        if value is not None and w > 0:
            total += w * value
            weight += w
    return total / weight if weight else None


# --- one order ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillPoint:
    """One fill as TCA sees it: its venue, size, price, fee in quote currency, the
    consolidated mid when it happened and at each markout horizon (None: not known)."""

    venue: str
    quantity: Decimal
    price: Decimal
    fee_quote: Decimal = ZERO
    mid_at_fill: Decimal | None = None
    mid_after: dict[int, Decimal | None] = field(default_factory=dict)  # horizon s -> mid


@dataclass(frozen=True, slots=True)
class OrderFigures:
    filled_quantity: Decimal
    filled_notional: Decimal
    average_price: Decimal | None
    slippage_bp: Decimal | None  # against the arrival mid; positive = cost
    effective_spread_bp: Decimal | None
    fees: Decimal  # quote currency
    fees_bp: Decimal | None  # of the filled notional
    markouts_bp: dict[int, Decimal | None]  # horizon s -> bp; positive = good


def order_figures(
    side: str, arrival_mid: Decimal | None, fills: Sequence[FillPoint]
) -> OrderFigures:
    """The TCA figures of one order (a parent: all its children's fills) from its fills."""
    side_sign(side)  # a bad side is refused even with no fills
    quantity = sum((f.quantity for f in fills), ZERO)
    notional = sum((f.quantity * f.price for f in fills), ZERO)
    fees = sum((f.fee_quote for f in fills), ZERO)
    average = notional / quantity if quantity else None
    slippage = (
        slippage_bp(side, average, arrival_mid)
        if average is not None and arrival_mid is not None and arrival_mid > 0
        else None
    )
    spread = _weighted(
        (f.quantity, effective_spread_bp(side, f.price, f.mid_at_fill) if f.mid_at_fill else None)
        for f in fills
    )
    markouts = {
        h: _round(
            _weighted(
                (f.quantity, markout_bp(side, f.price, m) if (m := f.mid_after.get(h)) else None)
                for f in fills
            )
        )
        for h in HORIZONS_S
    }
    return OrderFigures(
        filled_quantity=quantity,
        filled_notional=notional,
        average_price=average,
        slippage_bp=_round(slippage),
        effective_spread_bp=_round(spread),
        fees=fees,
        fees_bp=_round(fees / notional * BP) if notional else None,
        markouts_bp=markouts,
    )


# --- many orders -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderFills:
    """A top-level order (a parent, or an order sent straight to a venue) and its fills
    (a parent's are its children's)."""

    order_id: int
    side: str
    arrival_mid: Decimal | None
    fills: Sequence[FillPoint]


@dataclass(frozen=True, slots=True)
class Aggregate:
    orders: int  # distinct top-level orders with a fill counted here
    fills: int
    filled_notional: Decimal
    slippage_bp: Decimal | None
    effective_spread_bp: Decimal | None
    fees: Decimal
    fees_bp: Decimal | None
    markouts_bp: dict[int, Decimal | None]


def _weight(order: OrderFills, fill: FillPoint) -> Decimal:
    reference = order.arrival_mid if order.arrival_mid else fill.price
    return fill.quantity * reference


class _Sums:
    """Running sums of one aggregate: each bp figure as sum(weight x bp) / sum(weight),
    kept as numerator and weight so that a fill costs no division but its own."""

    __slots__ = ("fees", "fills", "ids", "marks", "notional", "slip", "spread")

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.fills = 0
        self.notional = ZERO
        self.fees = ZERO
        self.slip = [ZERO, ZERO]
        self.spread = [ZERO, ZERO]
        self.marks = {h: [ZERO, ZERO] for h in HORIZONS_S}

    def add(self, order: OrderFills, f: FillPoint, w: Decimal) -> None:
        self.ids.add(order.order_id)
        self.fills += 1
        self.notional += f.quantity * f.price
        self.fees += f.fee_quote
        sign = side_sign(order.side)
        if order.arrival_mid:  # w x slippage = q x a x s (p - a) / a x BP = q x s (p - a) x BP
            self.slip[0] += w * sign * (f.price - order.arrival_mid) / order.arrival_mid
            self.slip[1] += w
        if f.mid_at_fill:
            self.spread[0] += w * 2 * sign * (f.price - f.mid_at_fill) / f.mid_at_fill
            self.spread[1] += w
        for h in HORIZONS_S:
            m = f.mid_after.get(h)
            if m:
                self.marks[h][0] += w * sign * (m - f.price) / f.price
                self.marks[h][1] += w

    def result(self) -> Aggregate:
        def mean(pair: list[Decimal]) -> Decimal | None:
            return _round(pair[0] / pair[1] * BP) if pair[1] else None

        return Aggregate(
            orders=len(self.ids),
            fills=self.fills,
            filled_notional=self.notional,
            slippage_bp=mean(self.slip),
            effective_spread_bp=mean(self.spread),
            fees=self.fees,
            fees_bp=_round(self.fees / self.notional * BP) if self.notional else None,
            markouts_bp={h: mean(self.marks[h]) for h in HORIZONS_S},
        )


def aggregate_by(
    orders: Iterable[OrderFills],
    keys: Callable[[OrderFills, FillPoint], Iterable[Hashable]],
) -> dict[Hashable, Aggregate]:
    """Aggregates of many buckets in one pass: ``keys(order, fill)`` names the buckets a
    fill counts in (none: skipped). Each fill counts once per bucket, weighted by its
    arrival notional, so a parent and its children are never counted twice."""
    sums: dict[Hashable, _Sums] = {}
    for order in orders:
        for f in order.fills:
            names = list(keys(order, f))
            if not names:
                continue
            w = _weight(order, f)
            for name in names:
                bucket = sums.get(name)
                if bucket is None:
                    bucket = sums[name] = _Sums()
                bucket.add(order, f, w)
    return {name: bucket.result() for name, bucket in sums.items()}


def aggregate(orders: Iterable[OrderFills], *, venue: str | None = None) -> Aggregate:
    """The aggregate over the fills of ``orders`` (only those at ``venue`` if given)."""
    found = aggregate_by(orders, lambda o, f: [0] if venue in (None, f.venue) else [])
    return found.get(0) or _Sums().result()


# --- venue quality -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChildOutcome:
    """A child order the router sent, once it was done (or as it stands)."""

    quantity: Decimal
    filled: Decimal
    rejected: bool
    ack_latency_ms: float | None  # from sending to the venue's first answer
    slippage_bp: Decimal | None  # average fill price against the planned (limit) price


@dataclass(frozen=True, slots=True)
class ScoreConfig:
    """How venue quality becomes a score in 0..1 (docs/TCA.md has the formula).

    Each component is a quality in 0..1 (1 = good); the score is their weighted mean over
    the components with evidence, pulled towards 1 by ``prior_children`` imaginary
    perfect children so that one bad child does not condemn a venue."""

    window_children: int = 50  # the last N children per venue and symbol...
    window_s: float = 3600.0  # ...that finished within this many seconds
    prior_children: int = 5
    latency_good_ms: float = 50.0  # quality 1 at or below
    latency_bad_ms: float = 1000.0  # quality 0 at or above
    slippage_bad_bp: Decimal = Decimal(10)  # quality 0 at this cost against plan
    markout_bad_bp: Decimal = Decimal(20)  # quality 0 at this adverse markout
    w_fill: Decimal = Decimal("0.35")
    w_reject: Decimal = Decimal("0.25")
    w_latency: Decimal = Decimal("0.10")
    w_slippage: Decimal = Decimal("0.10")
    w_markout: Decimal = Decimal("0.20")


@dataclass(frozen=True, slots=True)
class MarkoutPoint:
    """A child fill's markouts at the score horizons (bp, positive = good), by quantity."""

    quantity: Decimal
    markouts_bp: dict[int, Decimal | None]


@dataclass(frozen=True, slots=True)
class VenueQuality:
    children: int
    fills: int
    fill_rate: Decimal | None  # filled / sent quantity of the children not rejected
    reject_rate: Decimal | None
    ack_latency_p50_ms: int | None
    slippage_bp: Decimal | None  # against the planned price; positive = cost
    markouts_bp: dict[int, Decimal | None]  # +1 s, +5 s
    score: Decimal


def _clamp01(value: Decimal) -> Decimal:
    return min(ONE, max(ZERO, value))


def venue_quality(
    children: Sequence[ChildOutcome],
    markouts: Sequence[MarkoutPoint],
    config: ScoreConfig = ScoreConfig(),
) -> VenueQuality:
    """Quality figures and the score of one venue and symbol from the children in its
    window and their fills' markouts; score 1 when there is no evidence."""
    n = len(children)
    accepted = [c for c in children if not c.rejected]
    sent = sum((c.quantity for c in accepted), ZERO)
    fill_rate = sum((c.filled for c in accepted), ZERO) / sent if sent else None
    reject_rate = Decimal(n - len(accepted)) / n if n else None
    latencies = [c.ack_latency_ms for c in children if c.ack_latency_ms is not None]
    p50 = statistics.median_low(latencies) if latencies else None
    slippage = _weighted((c.filled, c.slippage_bp) for c in accepted)
    marks = {
        h: _weighted((m.quantity, m.markouts_bp.get(h)) for m in markouts) for h in SCORE_HORIZONS_S
    }
    parts: list[tuple[Decimal, Decimal]] = []
    if fill_rate is not None:
        parts.append((config.w_fill, _clamp01(fill_rate)))
    if reject_rate is not None:
        parts.append((config.w_reject, ONE - reject_rate))
    if p50 is not None:
        span = Decimal(str(config.latency_bad_ms - config.latency_good_ms))
        late = Decimal(str(max(0.0, p50 - config.latency_good_ms)))
        parts.append((config.w_latency, _clamp01(ONE - late / span)))
    if slippage is not None:
        parts.append(
            (config.w_slippage, _clamp01(ONE - max(ZERO, slippage) / config.slippage_bad_bp))
        )
    known = [m for m in marks.values() if m is not None]
    if known:
        adverse = max(ZERO, -sum(known, ZERO) / len(known))
        parts.append((config.w_markout, _clamp01(ONE - adverse / config.markout_bad_bp)))
    score = ONE
    if parts and n:
        raw = sum((w * q for w, q in parts), ZERO) / sum((w for w, _ in parts), ZERO)
        shrink = Decimal(n) / Decimal(n + config.prior_children)
        score = ONE - (ONE - raw) * shrink
    return VenueQuality(
        children=n,
        fills=len(markouts),
        fill_rate=_round(fill_rate, SCORE_PLACES),
        reject_rate=_round(reject_rate, SCORE_PLACES),
        ack_latency_p50_ms=None if p50 is None else round(p50),
        slippage_bp=_round(slippage),
        markouts_bp={h: _round(m) for h, m in marks.items()},
        score=_clamp01(score).quantize(SCORE_PLACES),
    )
