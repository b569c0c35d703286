"""One slow venue must not slow the others (issue 12, item 2).

The whole OMS as real processes with two simulated venues, sim-a and sim-b, each with
its own venue worker (omsweb/cli.py ``venue_workers``). sim-b's submit->ack latency is
measured once with no slow venue, then again while sim-a answers every order request
1.5 s late and a burst of orders waits for it. The target: sim-b's p50 within 2x its
p50 with no slow venue; and the outbox sweep sends none of sim-a's waiting orders again.

The module runs a stack of its own (its own database and Redis db, two simulators):
bounded to about a minute.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
import requests

from omsweb import stack as stack_mod
from omsweb.stack import Api, Stack, free_port, wait_for

pytestmark = [pytest.mark.system, pytest.mark.soak, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
SLOW_MS = 1500
BASELINE_ORDERS = 20
SLOW_BURST = 12  # orders to the slow venue, as in the issue
MEASURED_ORDERS = 20


@pytest.fixture(scope="module")
def two_venues(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("isolation")
    redis_db = (
        int(os.environ.get("OMS_TEST_REDIS_DB", "15")) - 5
    )  # not the session stack's (-2), nor bench's 11
    env = stack_mod.isolated_env(dict(os.environ), db_name="test_oms_isolation", redis_db=redis_db)
    env.update(OMS_HOME=str(logdir), OMS_LOG_LEVEL="INFO")
    sim_a, sim_b = free_port(), free_port()
    token = stack_mod.setup_database(env, sim_a, "iso-trader", extra_sims={"sim-b": sim_b})
    subprocess.run(  # generous per-account flow limits: bursts of orders
        [sys.executable, "-m", "tests.system.fault_setup", "iso-admin"],
        env=env, cwd=ROOT, check=True, capture_output=True,
    )  # fmt: skip
    running = stack_mod.launch(
        env, logdir, token=token, sim_port=sim_a, extra_sims={"sim-b": sim_b}
    )
    running.sim_b = f"http://127.0.0.1:{sim_b}"  # type: ignore[attr-defined]
    yield running
    running.stop()


def _resting_buy(stack: Stack, venue: str, cid: str) -> dict:
    """A small GTC buy 1% under the venue's best bid: acknowledged, never filled."""
    base = stack.sim if venue == "sim-a" else stack.sim_b  # type: ignore[attr-defined]
    book = requests.get(f"{base}/sim/state", params={"depth": 1}, timeout=10).json()
    bid = D(book["books"]["BTCUSDT"]["bids"][0][0])
    return {
        "account": "DEMO", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
        "time_in_force": "GTC", "quantity": "0.001", "venue": venue,
        "price": str((bid * D("0.99")).quantize(D("0.01"))), "client_order_id": cid,
    }  # fmt: skip


def _when(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _submit_to_ack(api: Api, order_id: int) -> float | None:
    """Seconds from the order's creation to the venue's ack applied (None: not yet)."""
    events = api.get(f"/api/v1/orders/{order_id}/").json()["events"]
    acked = [e for e in events if e["status"] == "ACCEPTED"]
    return _when(acked[0]["created_at"]) - _when(events[0]["created_at"]) if acked else None


def _latencies(api: Api, order_ids: list[int]) -> list[float]:
    return wait_for(
        lambda: (lambda ls: ls if None not in ls else None)(
            [_submit_to_ack(api, i) for i in order_ids]
        ),
        timeout=60,
        interval=0.5,
    )


def _send(api: Api, stack: Stack, venue: str, prefix: str, n: int, pace_s: float) -> list[int]:
    ids = []
    for i in range(n):
        r = api.post("/api/v1/orders/", _resting_buy(stack, venue, f"{prefix}-{i:03d}"))
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
        time.sleep(pace_s)
    return ids


def _swept(stack: Stack) -> list[int]:
    """What each outbox sweep re-queued, from the recon worker's log."""
    text = (stack.logdir / "worker-recon.log").read_text(errors="replace")
    found = re.findall(r"oms\.recon\.sweep_outbox\[[^\]]+\] succeeded in [^:]+: (\d+)", text)
    return [int(n) for n in found]


def test_one_venue_slow_then_other_venues_submit_to_ack_p50_within_2x(two_venues):
    stack, api = two_venues, two_venues.api()
    stack.sim_post("/sim/faults", {"reset": True})
    for venue in ("sim-a", "sim-b"):  # warm up: connections, markets, first queries
        _latencies(api, _send(api, stack, venue, f"iso-warm-{venue}", 5, 0.05))

    baseline = _latencies(api, _send(api, stack, "sim-b", "iso-base", BASELINE_ORDERS, 0.1))
    base_p50 = statistics.median(baseline)

    slow = requests.post(
        f"{stack.sim}/sim/faults", json={"latency_ms": SLOW_MS, "scope": "orders"}, timeout=10
    )
    slow.raise_for_status()
    sweeps_before = len(_swept(stack))
    burst: list[int] = []
    sender = threading.Thread(
        target=lambda: burst.extend(_send(api, stack, "sim-a", "iso-slow", SLOW_BURST, 0.0))
    )
    sender.start()
    time.sleep(0.3)  # sim-a's worker is busy and its queue holds the rest of the burst
    measured = _latencies(api, _send(api, stack, "sim-b", "iso-meas", MEASURED_ORDERS, 0.1))
    sender.join(30)
    slow_latencies = _latencies(api, burst)
    stack.sim_post("/sim/faults", {"reset": True})
    sweeps = _swept(stack)[sweeps_before:]

    p50 = statistics.median(measured)
    print(
        f"\nsim-b submit->ack p50: {1000 * base_p50:.1f} ms alone, {1000 * p50:.1f} ms with "
        f"sim-a {SLOW_MS} ms slow (max {1000 * max(measured):.1f} ms); "
        f"sim-a's burst of {SLOW_BURST}: p50 {statistics.median(slow_latencies):.2f} s, "
        f"max {max(slow_latencies):.2f} s; outbox sweeps {len(sweeps)}, re-queued {sum(sweeps)}"
    )
    assert max(slow_latencies) > 2 * SLOW_MS / 1000  # sim-a's orders did queue up
    assert p50 <= 2 * base_p50, (base_p50, p50, measured)
    assert sum(sweeps) == 0, f"the outbox sweep re-queued waiting orders: {sweeps}"
