"""Transaction-cost analysis of every top-level order (a parent, or an order sent straight
to a venue), kept up to date by a listener of the execution engine's events
(``settings.OMS_EVENT_LISTENERS``) and by a sweep every second (``routing/tasks.py``).

* **Arrival**: the consolidated mid in force when the engine accepted the order, read
  from Redis (``marketdata.store`` keeps each published mid for ``MARK_HISTORY_S``), by
  the sweep (``sweep_arrivals``) or by the order's first fill, whichever comes first. The
  order path pays nothing for it (its six round trips are pinned by a test).
* **Fills**: each fill (of the order, or of a child: children roll up into their parent)
  is recorded in the fill's transaction, in a savepoint of its own, with the mid in force
  when it happened; its markouts are queued as due samples in a Redis sorted set
  (``oms:tca:due``, scored by due time: +1 s, +5 s, +60 s), and the order's figures are
  recomputed from its fills (``routing/tca_math.py``).
* **Markouts**: ``sweep_markouts`` takes the due samples, at most ``SWEEP_BATCH`` a run, reads the mid in force at each
  sample's moment from the mark history (exact however late the sweep runs, within
  ``MARK_HISTORY_S``), stores it, and recomputes the figures and venue scores it touched.
  No thread and no timer per fill.

A failure here is logged and never loses or holds up the order or the fill. Denied
orders have no TCA row.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from marketdata.store import MARK_HISTORY_S, marks_at
from orders.domain import lifecycle as lc
from orders.events import FillBooked, OrderChanged
from routing import scores
from routing import tca_math as tm
from routing.models import FillTca, OrderTca

log = logging.getLogger(__name__)

DUE_KEY = "oms:tca:due"
ARRIVALS_WATERMARK_KEY = "oms:tca:arrivals"
ARRIVALS_OVERLAP_S = 10.0  # an order committed this long after its creation is still seen
SWEEP_BATCH = 1000
HORIZON_FIELD = {1: "mid_1s", 5: "mid_5s", 60: "mid_60s"}
ORDER_MARKOUT_FIELD = {1: "markout_1s_bp", 5: "markout_5s_bp", 60: "markout_60s_bp"}

# Take up to ARGV[2] members due by ARGV[1], atomically, so two sweeps never sample twice.
_POP_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
"""


def _redis() -> Any:
    from omsweb.redis_client import client

    return client()


# --- the listener ------------------------------------------------------------------------


def on_event(event: Any) -> None:
    """A listener of ``omsweb.events``: fills, and routed children done."""
    if isinstance(event, FillBooked):
        after_fill(order=event.order, fill=event.fill)
    elif isinstance(event, OrderChanged):
        order = event.order
        if order.parent_id is not None and order.status in scores.TERMINAL:
            transaction.on_commit(functools.partial(scores.record_child_after_commit, order.pk))


# --- arrivals -----------------------------------------------------------------------------


def _arrival(order: Any) -> OrderTca:
    return OrderTca(
        order_id=order.pk,
        account_id=order.account_id,
        symbol=order.instrument.symbol,
        side=order.side,
        venue=order.venue.name if order.venue_id else "",
        arrival_at=order.created_at,
    )


def record_arrivals(redis: Any, orders: list[Any]) -> int:
    """Store the TCA rows of top-level orders, each with the consolidated mid in force
    when the order was created (the mark history). Idempotent: rows already there are
    kept. Returns how many were asked for."""
    rows = [_arrival(order) for order in orders]
    by_symbol: dict[str, list[OrderTca]] = defaultdict(list)
    for row in rows:
        by_symbol[row.symbol].append(row)
    for symbol, mine in by_symbol.items():
        mids = marks_at(redis, symbol, [r.arrival_at.timestamp() for r in mine])
        for row, mid in zip(mine, mids, strict=True):
            row.arrival_mid = mid
    OrderTca.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def sweep_arrivals(*, now: float | None = None, limit: int = SWEEP_BATCH) -> int:
    """Give every top-level order accepted lately (not DENIED) its TCA row. Scans from
    shortly before the previous run started (a watermark in Redis), at most as far back
    as the mark history reaches; an order that fills first gets its row from its fill."""
    from orders.models import Order

    now = time.time() if now is None else now
    redis = _redis()
    mark = redis.get(ARRIVALS_WATERMARK_KEY)
    start = now - MARK_HISTORY_S + 5
    if mark is not None:
        start = max(start, float(mark) - ARRIVALS_OVERLAP_S)
    since = datetime.fromtimestamp(start, tz=UTC)
    orders = list(
        Order.objects.filter(created_at__gte=since, parent__isnull=True, tca__isnull=True)
        .exclude(status=lc.OrderStatus.DENIED.value)
        .select_related("instrument", "venue")
        .order_by("created_at")[:limit]
    )
    done = record_arrivals(redis, orders)
    # a full batch: the next run goes on from the last one stored
    watermark = orders[-1].created_at.timestamp() if len(orders) == limit else now
    redis.set(ARRIVALS_WATERMARK_KEY, repr(watermark), ex=MARK_HISTORY_S)
    return done


# --- fills --------------------------------------------------------------------------------


def after_fill(*, order: Any, fill: Any) -> None:
    """Record a fill for TCA (and, for a child, its venue's score) in the fill's
    transaction, in a savepoint: a failure is logged and never loses the fill."""
    try:
        with transaction.atomic():
            record_fill(order=order, fill=fill)
    except Exception:
        log.exception("tca: fill %s not recorded", getattr(fill, "pk", None))


def _top_level(order: Any) -> OrderTca:
    """The locked TCA row of the order whose figures ``order``'s fills count in: its
    parent's for a child. Made now if the arrival sweep has not made it yet (a fill
    within a second of the order), the same way."""
    top_id = order.parent_id or order.pk
    row = OrderTca.objects.select_for_update().filter(order_id=top_id).first()
    if row is not None:
        return row
    from orders.models import Order

    top = (
        order
        if order.parent_id is None
        else Order.objects.select_related("instrument", "venue").get(pk=top_id)
    )
    record_arrivals(_redis(), [top])
    return OrderTca.objects.select_for_update().get(order_id=top_id)


def record_fill(*, order: Any, fill: Any, now: float | None = None) -> FillTca:
    tca = _top_level(order)
    instrument = fill.instrument
    executed: datetime = fill.executed_at or fill.created_at or timezone.now()
    at = executed.timestamp()
    redis = _redis()
    members = {f"{fill.pk}:{h}:{at:.6f}:{instrument.symbol}": at + h for h in tm.HORIZONS_S}
    pipe = redis.pipeline(transaction=False)
    pipe.zadd(DUE_KEY, members)
    pipe.execute()
    row = FillTca.objects.create(
        fill_id=fill.pk,
        tca_order=tca,
        routed=order.parent_id is not None,
        venue=fill.venue.name,
        symbol=instrument.symbol,
        side=fill.side,
        quantity=fill.quantity,
        price=fill.price,
        fee_quote=tm.fee_in_quote(
            fill.fee,
            fill.fee_currency,
            base=instrument.base,
            quote=instrument.quote,
            price=fill.price,
        ),
        executed_at=executed,
        mid_at_fill=marks_at(redis, instrument.symbol, [at])[0],
    )
    refresh_figures(tca)
    return row


def fill_point(row: FillTca) -> tm.FillPoint:
    return tm.FillPoint(
        venue=row.venue,
        quantity=row.quantity,
        price=row.price,
        fee_quote=row.fee_quote,
        mid_at_fill=row.mid_at_fill,
        mid_after={h: getattr(row, f) for h, f in HORIZON_FIELD.items()},
    )


def refresh_figures(tca: OrderTca) -> tm.OrderFigures:
    """Recompute an order's figures from its fills and store them (under its row lock)."""
    points = [fill_point(f) for f in FillTca.objects.filter(tca_order_id=tca.pk)]
    fig = tm.order_figures(tca.side, tca.arrival_mid, points)
    tca.filled_quantity = fig.filled_quantity
    tca.filled_notional = fig.filled_notional
    tca.average_price = (
        None if fig.average_price is None else fig.average_price.quantize(Decimal("1e-12"))
    )
    tca.slippage_bp = fig.slippage_bp
    tca.effective_spread_bp = fig.effective_spread_bp
    tca.fees = fig.fees.quantize(Decimal("1e-12"))
    tca.fees_bp = fig.fees_bp
    fields = [
        "filled_quantity", "filled_notional", "average_price", "slippage_bp",
        "effective_spread_bp", "fees", "fees_bp", "updated_at",
    ]  # fmt: skip
    for h, name in ORDER_MARKOUT_FIELD.items():
        setattr(tca, name, fig.markouts_bp[h])
        fields.append(name)
    tca.save(update_fields=fields)
    return fig


# --- markouts ----------------------------------------------------------------------------


def pop_due(redis: Any, now: float, limit: int = SWEEP_BATCH) -> list[str]:
    raw = redis.eval(_POP_DUE, 1, DUE_KEY, repr(now), limit)
    return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]


def sweep_markouts(*, now: float | None = None, limit: int = SWEEP_BATCH) -> int:
    """Sample the markouts due by ``now``: the mid in force at each fill's time + horizon
    (None when no LIVE market data then). Returns how many samples were taken. Samples
    taken are stored before the next batch; a failure puts the batch back for the next
    run (idempotent: a sample written twice writes the same mid)."""
    now = time.time() if now is None else now
    redis = _redis()
    due = pop_due(redis, now, limit)
    if not due:
        return 0
    try:
        _sample(redis, due)
    except Exception:
        redis.zadd(DUE_KEY, {m: now for m in due})  # next run, after the cause is fixed
        raise
    return len(due)


def _sample(redis: Any, due: list[str]) -> None:
    wanted: dict[str, list[tuple[int, int, float]]] = defaultdict(list)  # symbol -> samples
    for member in due:
        fill_id, horizon, at, symbol = member.split(":", 3)
        wanted[symbol].append((int(fill_id), int(horizon), float(at) + int(horizon)))
    values: dict[int, dict[str, Decimal | None]] = defaultdict(dict)
    for symbol, samples in wanted.items():
        mids = marks_at(redis, symbol, [moment for _, _, moment in samples])
        for (fill_id, horizon, _), mid in zip(samples, mids, strict=True):
            values[fill_id][HORIZON_FIELD[horizon]] = mid
    touched_orders: set[int] = set()
    touched_venues: set[tuple[str, str]] = set()
    with transaction.atomic():
        rows = list(
            FillTca.objects.filter(fill_id__in=list(values)).only(
                "fill_id", "tca_order_id", "routed", "venue", "symbol"
            )
        )
        for name in HORIZON_FIELD.values():  # one UPDATE per horizon, not one per sample
            changed = []
            for row in rows:
                if name in values[row.fill_id]:
                    setattr(row, name, values[row.fill_id][name])
                    changed.append(row)
            if changed:
                FillTca.objects.bulk_update(changed, [name])
        for row in rows:
            touched_orders.add(row.tca_order_id)
            if row.routed:
                touched_venues.add((row.venue, row.symbol))
        for order_id in sorted(touched_orders):  # a fixed order: no deadlock with a peer
            tca = OrderTca.objects.select_for_update().get(order_id=order_id)
            refresh_figures(tca)
    for venue, symbol in sorted(touched_venues):
        scores.refresh(venue, symbol)
