"""Venue scores learned from our own routed children (issue 15, item 4).

Per venue and symbol, over a rolling window of **the last 50 child orders the router
sent there that finished within the last hour** (``ScoreConfig``): the fill rate of the
children (filled / sent quantity, rejected ones apart), the reject rate, the p50 ack
latency (from sending to the venue's first answer), the slippage of their fills against
the planned price (the child's limit), and the +1 s / +5 s markouts of their fills. Each
is a quality in 0..1; their weighted mean, pulled towards 1 for few children, is the
score (formula in docs/TCA.md and ``routing/tca_math.py``).

Updated continuously: when a child is done (a listener of the engine's events, after its
transaction commits; a late fill re-records it) and when the markout sweep samples its
fills. ``scores_for`` is what the router reads (1 for a venue with no evidence).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from orders.domain import lifecycle as lc
from orders.shapes import dec
from routing import tca_math as tm
from routing.models import FillTca, RoutedChild, VenueScore

log = logging.getLogger(__name__)

CONFIG = tm.ScoreConfig()
TERMINAL = frozenset(lc.values(lc.TERMINAL_STATUSES))
ONE = Decimal(1)
SENT = "OrderSubmitted"
ANSWERS = frozenset(
    {"OrderAccepted", "OrderRejected", "OrderFilled", "OrderExpired", "OrderCanceled"}
)


def scores_for(symbol: str, venues: list[str]) -> dict[str, Decimal]:
    """The score (0..1) of each venue for ``symbol``; 1 where there is no evidence. One
    query."""
    found = dict(
        VenueScore.objects.filter(symbol=symbol, venue__in=venues).values_list("venue", "score")
    )
    return {venue: found.get(venue, ONE) for venue in venues}


# --- children ---------------------------------------------------------------------------


def ack_latency_ms(events: list[tuple[str, datetime]]) -> float | None:
    """From the first ``OrderSubmitted`` to the venue's first answer after it (accepted,
    rejected, filled, expired or canceled), in ms; None if either is missing."""
    sent: datetime | None = None
    for kind, at in events:
        if sent is None:
            if kind == SENT:
                sent = at
        elif kind in ANSWERS:
            return max(0.0, (at - sent).total_seconds() * 1000)
    return None


def record_child_after_commit(order_id: int) -> None:
    try:
        record_child(order_id)
    except Exception:
        log.exception("scores: child %s not recorded", order_id)


def record_child(order_id: int, *, now: datetime | None = None) -> RoutedChild | None:
    """Record (or update, after a late fill) a done child order as evidence about its
    venue, and refresh that venue's score. A child never sent (denied, canceled before
    sending, failed fast on an open breaker) says nothing about the venue: skipped."""
    from orders.models import Order

    order = (
        Order.objects.select_related("instrument", "venue")
        .filter(pk=order_id, parent__isnull=False)
        .first()
    )
    if order is None or order.venue is None or order.status not in TERMINAL:
        return None
    events = list(order.events.order_by("sequence").values_list("kind", "created_at"))
    if not any(kind == SENT for kind, _ in events):
        return None
    row, _ = RoutedChild.objects.update_or_create(
        order_id=order.pk,
        defaults={
            "venue": order.venue.name,
            "symbol": order.instrument.symbol,
            "quantity": order.quantity,
            "filled_quantity": order.filled_quantity,
            "planned_price": order.price,
            "average_price": order.average_price,
            "rejected": order.status == lc.OrderStatus.REJECTED.value,
            "ack_latency_ms": ack_latency_ms(events),
            "finished_at": now or timezone.now(),
        },
    )
    refresh(row.venue, row.symbol, now=now)
    return row


def _outcome(row: RoutedChild, side: str | None) -> tm.ChildOutcome:
    slip = None
    if side and row.average_price is not None and row.planned_price and row.filled_quantity:
        slip = tm.slippage_bp(side, row.average_price, row.planned_price)
    return tm.ChildOutcome(
        quantity=row.quantity,
        filled=row.filled_quantity,
        rejected=row.rejected,
        ack_latency_ms=row.ack_latency_ms,
        slippage_bp=slip,
    )


def window(venue: str, symbol: str, *, now: datetime | None = None) -> tm.VenueQuality:
    """The quality figures of ``venue`` for ``symbol`` over its window, from the rows."""
    since = (now or timezone.now()) - timedelta(seconds=CONFIG.window_s)
    rows = list(
        RoutedChild.objects.filter(venue=venue, symbol=symbol, finished_at__gte=since)
        .select_related("order")
        .order_by("-finished_at")[: CONFIG.window_children]
    )
    children = [_outcome(r, r.order.side) for r in rows]
    fills = FillTca.objects.filter(
        fill__order_id__in=[r.order_id for r in rows], routed=True
    ).order_by("-executed_at")
    markouts = [
        tm.MarkoutPoint(
            quantity=f.quantity,
            markouts_bp={
                1: tm.markout_bp(f.side, f.price, f.mid_1s) if f.mid_1s else None,
                5: tm.markout_bp(f.side, f.price, f.mid_5s) if f.mid_5s else None,
            },
        )
        for f in fills
    ]
    return tm.venue_quality(children, markouts, CONFIG)


def refresh(venue: str, symbol: str, *, now: datetime | None = None) -> VenueScore:
    """Recompute and store the score of ``venue`` for ``symbol``."""
    q = window(venue, symbol, now=now)
    row, _ = VenueScore.objects.update_or_create(
        venue=venue,
        symbol=symbol,
        defaults={
            "children": q.children,
            "fills": q.fills,
            "fill_rate": q.fill_rate,
            "reject_rate": q.reject_rate,
            "ack_latency_p50_ms": q.ack_latency_p50_ms,
            "slippage_bp": q.slippage_bp,
            "markout_1s_bp": q.markouts_bp.get(1),
            "markout_5s_bp": q.markouts_bp.get(5),
            "score": q.score,
        },
    )
    return row


def score_rows(symbols: list[str], venues: list[str]) -> list[dict[str, Any]]:
    """Every (venue, symbol) pair asked for, stored or not (no evidence: score 1)."""
    stored = {
        (r.venue, r.symbol): r
        for r in VenueScore.objects.filter(symbol__in=symbols, venue__in=venues)
    }
    out = []
    for symbol in symbols:
        for venue in venues:
            row = stored.get((venue, symbol))
            out.append(score_to_dict(row) if row else _no_evidence(venue, symbol))
    return out


def score_to_dict(row: VenueScore) -> dict[str, Any]:
    return {
        "venue": row.venue,
        "symbol": row.symbol,
        "score": dec(row.score),
        "children": row.children,
        "fills": row.fills,
        "fill_rate": dec(row.fill_rate),
        "reject_rate": dec(row.reject_rate),
        "ack_latency_p50_ms": row.ack_latency_p50_ms,
        "slippage_bp": dec(row.slippage_bp),
        "markout_1s_bp": dec(row.markout_1s_bp),
        "markout_5s_bp": dec(row.markout_5s_bp),
        "updated_at": row.updated_at,
    }


def _no_evidence(venue: str, symbol: str) -> dict[str, Any]:
    return {
        "venue": venue,
        "symbol": symbol,
        "score": "1",
        "children": 0,
        "fills": 0,
        "fill_rate": None,
        "reject_rate": None,
        "ack_latency_p50_ms": None,
        "slippage_bp": None,
        "markout_1s_bp": None,
        "markout_5s_bp": None,
        "updated_at": None,
    }
