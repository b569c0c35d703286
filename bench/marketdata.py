"""Market-data benchmarks for ``make bench``.

* ``bench_md_book(n)``: one Binance-style diff applied to a 1,000-level book, in process
  (``md_book_update_p50_us``, ``md_book_update_p99_us``; target p50 <= 20 us). The book
  and the diffs are generated (seeded) with the shape of Binance's ``depth@100ms`` on
  BTCUSDT: 16 levels per diff at the median, a third to a half of them removals, most near the
  top, prices and quantities as strings (parsing is part of applying).

Run alone: ``python -m bench --only md_book``.
"""

from __future__ import annotations

import random
import time
from decimal import Decimal

from bench.stats import pct

LEVELS = 1_000
TICK = Decimal("0.01")
MID = Decimal("60000.00")


def _diffs(rng: random.Random, n: int, first_id: int) -> list[object]:
    """Diffs that keep about ``LEVELS`` a side: removals hit existing levels, the other
    half update or add levels, mostly near the top."""
    from marketdata.book import Diff

    sides = {
        "b": {MID - (i + 1) * TICK for i in range(LEVELS)},
        "a": {MID + (i + 1) * TICK for i in range(LEVELS)},
    }
    near = {k: sorted(v, reverse=(k == "b"))[:200] for k, v in sides.items()}
    out: list[object] = []
    uid = first_id
    for _ in range(n):
        changes: dict[str, list[list[str]]] = {"b": [], "a": []}
        for _ in range(16):
            side = "b" if rng.random() < 0.5 else "a"
            present = sides[side]
            if rng.random() < 0.4 and near[side]:
                price = near[side].pop(rng.randrange(len(near[side])))
                if price not in present:
                    continue
                present.discard(price)
                qty = "0.00000000"
            else:
                offset = int(rng.expovariate(1 / 60)) + 1  # ticks from the mid
                price = MID - offset * TICK if side == "b" else MID + offset * TICK
                present.add(price)
                near[side].append(price)
                qty = f"{rng.uniform(0.001, 3):.8f}"
            changes[side].append([f"{price:.8f}", qty])
        out.append(Diff(uid + 1, uid + 7, changes["b"], changes["a"]))
        uid += 7
    return out


def bench_md_book(n: int = 20_000) -> dict[str, float]:
    from marketdata.book import L2Book, Outcome

    rng = random.Random(14)
    book = L2Book("BTCUSDT")
    bids = [[f"{MID - (i + 1) * TICK:.8f}", "1.00000000"] for i in range(LEVELS)]
    asks = [[f"{MID + (i + 1) * TICK:.8f}", "1.00000000"] for i in range(LEVELS)]
    book.apply_snapshot(bids, asks, last_update_id=1)
    diffs = _diffs(rng, n + 1_000, first_id=1)
    for diff in diffs[:1_000]:  # warm up
        book.apply_diff(diff)  # type: ignore[arg-type]
    samples = []
    clock = time.perf_counter_ns
    for diff in diffs[1_000:]:
        t0 = clock()
        outcome = book.apply_diff(diff)  # type: ignore[arg-type]
        samples.append((clock() - t0) / 1_000)
        assert outcome == Outcome.APPLIED, book.reason
    return {
        "md_book_update_p50_us": round(pct(samples, 0.5), 2),
        "md_book_update_p99_us": round(pct(samples, 0.99), 2),
        "md_book_levels": len(book.bids) + len(book.asks),
    }
