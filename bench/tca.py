"""TCA and venue-score arithmetic for ``make bench`` (in process, pure code, seeded data).

* ``tca_order_figures_p50_us``: one order's figures from its 10 fills (each fill and
  each markout sample recomputes them);
* ``tca_aggregate_10k_fills_ms``: one aggregate over 1,000 orders of 10 fills (what
  ``GET /api/v1/tca/`` does per venue and per day);
* ``venue_quality_p50_us``: a venue's score from a full window (50 children, 50 fills),
  computed whenever a routed child is done.

Run alone: ``python -m bench --only tca``.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

from bench.stats import pct


def _fills(rng: random.Random, n: int) -> list[object]:
    from routing.tca_math import FillPoint

    out = []
    for _ in range(n):
        price = Decimal(60000 + rng.randint(-300, 300)) / 1
        mid = price + Decimal(rng.randint(-5, 5))
        out.append(
            FillPoint(
                venue=rng.choice(["sim-a", "sim-b", "sim-c"]),
                quantity=Decimal(rng.randint(1, 500)) / 1000,
                price=price,
                fee_quote=Decimal("0.06"),
                mid_at_fill=mid,
                mid_after={1: mid + 1, 5: mid - 2, 60: mid + 3},
            )
        )
    return out


def _timed_us(fn, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / 1_000)
    return samples


def bench_tca() -> dict[str, float]:
    from routing import tca_math as tm

    rng = random.Random(15)
    fills = _fills(rng, 10)
    figures = _timed_us(lambda: tm.order_figures("buy", Decimal(60000), fills), 2_000)  # type: ignore[arg-type]
    orders = [
        tm.OrderFills(i, rng.choice(["buy", "sell"]), Decimal(60000), _fills(rng, 10))  # type: ignore[arg-type]
        for i in range(1_000)
    ]
    aggregate = _timed_us(lambda: tm.aggregate(orders), 5)
    children = [
        tm.ChildOutcome(Decimal(1), Decimal(rng.randint(0, 10)) / 10, rng.random() < 0.05,
                        rng.uniform(5, 80), Decimal(rng.randint(-3, 0)))
        for _ in range(50)
    ]  # fmt: skip
    marks = [tm.MarkoutPoint(Decimal(1), {1: Decimal(-1), 5: Decimal(2)}) for _ in range(50)]
    quality = _timed_us(lambda: tm.venue_quality(children, marks), 2_000)
    return {
        "tca_order_figures_p50_us": round(pct(figures, 0.5), 1),
        "tca_aggregate_10k_fills_ms": round(pct(aggregate, 0.5) / 1_000, 1),
        "venue_quality_p50_us": round(pct(quality, 0.5), 1),
    }
