"""What the TCA API and the blotter's TCA view show (reads only): per-order figures and
aggregates per venue and per day, with a slippage distribution per venue.

Aggregates are made from fills (``routing/tca_math.aggregate``): each fill counts once,
at its own venue, inside the top-level order it belongs to, so a parent and its children
are never counted twice.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q

from orders.shapes import dec
from routing import tca_math as tm
from routing.models import FillTca, OrderTca
from routing.tca import fill_point

MAX_ORDERS_LISTED = 500  # newest first; the aggregates cover every order in the filter
MAX_ORDERS_AGGREGATED = 50_000
HISTOGRAM_BIN_BP = 1
HISTOGRAM_LIMIT_BP = 25  # slippage beyond +-25 bp falls in the open end bins


@dataclass(frozen=True)
class TcaFilter:
    accounts: Any  # a queryset of the accounts the user may see (narrowed by ``account``)
    since: datetime
    symbol: str | None = None
    venue: str | None = None


def _orders(f: TcaFilter) -> Any:
    qs = OrderTca.objects.filter(account__in=f.accounts, arrival_at__gte=f.since)
    if f.symbol:
        qs = qs.filter(symbol=f.symbol)
    if f.venue:
        qs = qs.filter(Q(venue=f.venue) | Q(fills__venue=f.venue)).distinct()
    return qs


def _figures(tca: OrderTca, venues: list[str]) -> dict[str, Any]:
    order = tca.order
    return {
        "order_id": tca.order_id,
        "client_order_id": order.client_order_id,
        "account": tca.account.code,
        "symbol": tca.symbol,
        "side": tca.side,
        "venue": tca.venue or None,
        "routed": not tca.venue,
        "status": order.status,
        "quantity": dec(order.quantity),
        "arrival_at": tca.arrival_at,
        "arrival_mid": dec(tca.arrival_mid),
        "filled_quantity": dec(tca.filled_quantity),
        "average_price": dec(tca.average_price),
        "slippage_bp": dec(tca.slippage_bp),
        "effective_spread_bp": dec(tca.effective_spread_bp),
        "fees": dec(tca.fees),
        "fees_bp": dec(tca.fees_bp),
        "markout_1s_bp": dec(tca.markout_1s_bp),
        "markout_5s_bp": dec(tca.markout_5s_bp),
        "markout_60s_bp": dec(tca.markout_60s_bp),
        "venues": venues,
    }


def _aggregate_json(agg: tm.Aggregate) -> dict[str, Any]:
    return {
        "orders": agg.orders,
        "fills": agg.fills,
        "filled_notional": dec(agg.filled_notional.quantize(Decimal("1e-8"))),
        "slippage_bp": dec(agg.slippage_bp),
        "effective_spread_bp": dec(agg.effective_spread_bp),
        "fees": dec(agg.fees.quantize(Decimal("1e-8"))),
        "fees_bp": dec(agg.fees_bp),
        "markout_1s_bp": dec(agg.markouts_bp[1]),
        "markout_5s_bp": dec(agg.markouts_bp[5]),
        "markout_60s_bp": dec(agg.markouts_bp[60]),
    }


def _bin(bp: Decimal) -> tuple[int | None, int | None]:
    if bp < -HISTOGRAM_LIMIT_BP:
        return None, -HISTOGRAM_LIMIT_BP
    if bp >= HISTOGRAM_LIMIT_BP:
        return HISTOGRAM_LIMIT_BP, None
    lower = math.floor(bp / HISTOGRAM_BIN_BP) * HISTOGRAM_BIN_BP  # Decimal // truncates
    return lower, lower + HISTOGRAM_BIN_BP


def slippage_histogram(orders: Iterable[tm.OrderFills], *, venue: str | None) -> list[dict]:
    """Per venue, how many fills fell in each 1 bp bin of slippage against their order's
    arrival mid (positive = cost); open-ended bins beyond +-25 bp."""
    counts: dict[tuple[str, int | None, int | None], int] = defaultdict(int)
    for order in orders:
        if not order.arrival_mid:
            continue
        for f in order.fills:
            if venue is not None and f.venue != venue:
                continue
            bp = tm.slippage_bp(order.side, f.price, order.arrival_mid)
            lower, upper = _bin(bp)
            counts[(f.venue, lower, upper)] += 1

    def key(k: tuple[str, int | None, int | None]) -> tuple[str, float]:
        return k[0], float("-inf") if k[1] is None else k[1]

    return [
        {"venue": v, "lower_bp": lo, "upper_bp": hi, "fills": counts[(v, lo, hi)]}
        for v, lo, hi in sorted(counts, key=key)
    ]


def tca_report(f: TcaFilter) -> dict[str, Any]:
    qs = _orders(f)
    total = qs.count()
    ids = list(
        qs.order_by("-arrival_at").values_list("order_id", flat=True)[:MAX_ORDERS_AGGREGATED]
    )
    heads = {
        t.order_id: t for t in OrderTca.objects.filter(order_id__in=ids).select_related("account")
    }
    fills: dict[int, list[tm.FillPoint]] = defaultdict(list)
    for row in FillTca.objects.filter(tca_order_id__in=ids).order_by("executed_at", "fill_id"):
        fills[row.tca_order_id].append(fill_point(row))
    books = [
        tm.OrderFills(
            order_id=i, side=heads[i].side, arrival_mid=heads[i].arrival_mid, fills=fills[i]
        )
        for i in ids
        if i in heads
    ]

    def buckets(order: tm.OrderFills, fill: tm.FillPoint) -> list[tuple[str, str]]:
        if f.venue is not None and fill.venue != f.venue:
            return []
        day = heads[order.order_id].arrival_at.date().isoformat()
        return [("venue", fill.venue), ("day", day)]

    found = tm.aggregate_by(books, buckets)
    venues = sorted(name for kind, name in found if kind == "venue")
    days = sorted(name for kind, name in found if kind == "day")
    listed = list(
        OrderTca.objects.filter(order_id__in=ids[:MAX_ORDERS_LISTED])
        .select_related("order", "account")
        .order_by("-arrival_at", "-order_id")
    )
    return {
        "since": f.since,
        "orders_total": total,
        "orders": [_figures(t, sorted({p.venue for p in fills[t.order_id]})) for t in listed],
        "by_venue": [{"venue": v, **_aggregate_json(found[("venue", v)])} for v in venues],
        "by_day": [{"day": d, **_aggregate_json(found[("day", d)])} for d in days],
        "slippage_histogram": slippage_histogram(books, venue=f.venue),
    }
