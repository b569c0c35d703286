"""Fault tests (issue 4, "Show"): the whole OMS as real processes, one fault per test,
each bounded in time and in count. After each fault every order the API accepted must
be in a state that matches the venue's (asked by client order id), and the venue's
request log must show no client order id taken twice.

The module runs a stack of its own (its own database, and its own redis-server so the
broker can be killed) because it kills processes. The counts of every case are written
to ``.oms/fault-results.json`` and printed at the end of the run (docs/RELIABILITY.md
has the table).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from omsweb import stack as stack_mod
from omsweb.stack import Stack, free_port, wait_for
from tests.system.fault_helpers import (
    Burst,
    CaseResult,
    PatientApi,
    RedisServer,
    Results,
    Venue,
    book,
    ioc_bodies,
    oms_orders,
    settle,
    venue_counts,
    venue_ids,
)

pytestmark = [pytest.mark.system, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Results()
CURRENT: list[FaultStack] = []  # the module's stack, for the per-case notes
SETTLE_TIMEOUT = 60.0  # every case must settle well within this (docs/RELIABILITY.md)


def _logdir() -> Path:
    """The stack's logs (and Redis data) under .oms/fault-stack/, the last 3 runs kept:
    readable after a failed run (pytest's own temporary directories rotate away)."""
    import shutil

    base = ROOT / ".oms" / "fault-stack"
    base.mkdir(parents=True, exist_ok=True)
    for old in sorted(base.iterdir(), key=lambda p: p.stat().st_mtime)[:-2]:
        shutil.rmtree(old, ignore_errors=True)
    logdir = base / time.strftime(f"%Y%m%d-%H%M%S-{os.getpid()}")
    logdir.mkdir()
    return logdir


class FaultStack:
    def __init__(self, stack: Stack, redis_server: RedisServer, admin_token: str) -> None:
        self.stack = stack
        self.redis = redis_server
        self.api = PatientApi(stack.web, stack.token)
        self.admin = PatientApi(stack.web, admin_token)
        self.venue = Venue(stack.sim)
        self.supervised = True
        self.restarts: list[str] = []
        self.lock = threading.Lock()  # held by whoever starts or stops processes
        self._stop = threading.Event()
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        """What systemd's Restart=always (or Kubernetes) does in production: a worker
        process that exits on its own is started again. (A Celery worker can exit on a
        broker restart: kombu raises AttributeError acking a message on the connection
        it replaced, and the worker stops with "Unrecoverable error".) The tests that
        stop or kill workers on purpose turn this off while they do."""
        while not self._stop.wait(0.5):
            with self.lock:
                if not self.supervised:
                    continue
                for name, proc in list(self.stack.procs.items()):
                    if name.startswith("worker-") and not proc.alive():
                        self.restarts.append(f"{name} exited {proc.popen.returncode}")
                        self.stack.restart(name)

    def close(self) -> None:
        self._stop.set()
        self._supervisor.join(5)

    def faults(self, **changes) -> dict:
        return self.stack.sim_post("/sim/faults", changes)

    def breaker(self) -> dict:
        rows = self.admin.get("/api/v1/venues/").json()["results"]
        return next(v for v in rows if v["name"] == "sim-a")

    def celery(self):
        from celery import Celery

        url = self.stack.env["REDIS_URL"]
        app = Celery("fault-tests", broker=url, backend=url)
        app.conf.broker_transport_options = {"visibility_timeout": 300}
        return app

    def ensure_running(self) -> None:
        """Every process up (a failed test may have left one stopped)."""
        with self.lock:
            if self.redis.proc is None or self.redis.proc.poll() is not None:
                self.redis.start()
            for name, proc in list(self.stack.procs.items()):
                if not proc.alive():
                    self.stack.restart(name)
        self.stack.wait_healthy()


@pytest.fixture(scope="module")
def fs(request):
    logdir = _logdir()
    redis_server = RedisServer(logdir / "redis")
    redis_server.start()
    base = {**os.environ, "REDIS_URL": redis_server.url(0)}
    env = stack_mod.isolated_env(base, db_name="test_oms_faults", redis_db=0)
    env.update(OMS_HOME=str(logdir), OMS_LOG_LEVEL="INFO")
    sim_port = free_port()
    token = stack_mod.setup_database(env, sim_port, "fault-trader")
    admin = subprocess.run(
        [sys.executable, "-m", "tests.system.fault_setup"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[-1]
    try:
        running = stack_mod.launch(env, logdir, token=token, sim_port=sim_port)
    except Exception:
        redis_server.stop()
        raise
    if not request.config.pluginmanager.has_plugin("fault-results"):
        request.config.pluginmanager.register(_Summary(), "fault-results")
    faults = FaultStack(running, redis_server, admin)
    yield faults
    faults.close()
    running.stop()
    redis_server.stop()
    if RESULTS.rows:
        RESULTS.write(ROOT / ".oms" / "fault-results.json")


class _Summary:
    """Prints the per-case counts at the end of the run, whatever the capture mode."""

    def pytest_terminal_summary(self, terminalreporter) -> None:  # noqa: ANN001
        if not RESULTS.rows:
            return
        terminalreporter.write_sep("-", "fault tests (also in .oms/fault-results.json)")
        for line in RESULTS.table().splitlines():
            terminalreporter.write_line(line)


@pytest.fixture(autouse=True)
def fresh(fs):
    """Each case starts from a healthy stack and a venue without faults; the venue's
    request log is read from here on."""
    CURRENT[:] = [fs]
    fs.supervised = True
    fs.ensure_running()
    fs.stack.sim_post("/sim/faults", {"reset": True})
    fs.venue.mark()
    fs.restarts.clear()
    wait_for(lambda: fs.breaker()["breaker"]["state"] == "closed", timeout=30, interval=0.3)
    yield
    fs.supervised = True
    fs.stack.sim_post("/sim/faults", {"reset": True})


def _result(case, burst, settled, counts, *, lost_ok: int = 0, **extra) -> CaseResult:
    if burst is not None and burst.refused:
        extra["refused_by_api"] = len(burst.refused)
        extra["refused_why"] = sorted(set(burst.refused.values()))[0][:160]
    if burst is not None and burst.retries:
        extra["api_5xx_retried"] = burst.retries
    if burst is not None and burst.latencies:
        lat = sorted(burst.latencies)
        extra["api_ms_p50"] = round(1000 * lat[len(lat) // 2], 1)
        extra["api_ms_max"] = round(1000 * lat[-1], 1)
    if CURRENT and CURRENT[0].restarts:
        extra["worker_exits_restarted"] = "; ".join(CURRENT[0].restarts)
    seconds = settled.order_seconds()
    if seconds:
        extra["order_s_p50"] = round(seconds[len(seconds) // 2], 2)
        extra["order_s_max"] = round(seconds[-1], 2)
    row = CaseResult(
        case=case,
        sent=burst.n if burst else 0,
        accepted=len(burst.accepted) if burst else 0,
        duplicates=counts["duplicates"],
        lost=len(settled.unresolved) + max(0, counts["never_at_venue"] - lost_ok),
        resolve_s=settled.resolve_s,
        extra={k: v for k, v in extra.items() if v is not None},
    )
    RESULTS.add(row)
    return row


def _in_flight(fs: FaultStack, burst: Burst) -> int:
    """Orders accepted by the API but not yet answered by the venue, now."""
    orders = oms_orders(fs.api, list(burst.accepted))
    return sum(1 for o in orders.values() if o["status"] in ("PENDING_NEW", "SUBMITTED"))


def _show_slowest(fs: FaultStack, settled) -> None:
    """The events of the slowest order (shown with -s, or when the test fails)."""
    cid = settled.slowest()
    if not cid:
        return
    order = fs.api.get(f"/api/v1/orders/{settled.oms[cid]['id']}/").json()
    print(f"slowest {cid}: created {order['created_at']}")
    for e in order["events"]:
        print(f"  {e['created_at']} {e['kind']} {e['source']} {e['status']} {e['payload']}")
    vid = order["venue_client_order_id"]
    print("  venue log:", [(r["ts"], r["outcome"]) for r in fs.venue.log(client_order_id=vid)])


def _check(fs: FaultStack, settled, counts) -> None:
    assert counts["duplicates"] == 0, f"client order ids taken twice by the venue: {counts}"
    assert not settled.unresolved, (
        f"{len(settled.unresolved)} orders not matching the venue after {SETTLE_TIMEOUT}s: "
        f"{dict(list(settled.unresolved.items())[:10])}\n{fs.stack.logs(40)}"
    )


# --- 1. kill -9 the order worker in the middle of a burst --------------------------------


def test_kill9_order_worker_mid_burst_then_nothing_lost_nothing_doubled(fs):
    burst = Burst(fs.api, "k9", 200, ioc_bodies(fs.stack)).start()
    burst.wait_sent(70)
    with fs.lock:
        fs.supervised = False
        fs.stack.procs["worker-orders-sim-a"].kill()  # SIGKILL: its children die with it
    killed_at = burst.sent
    in_flight = _in_flight(fs, burst)
    time.sleep(1.0)
    fs.stack.restart("worker-orders-sim-a")
    fs.supervised = True
    burst.join()
    done = time.monotonic()
    settled = settle(fs.api, fs.venue, list(burst.accepted), since=done, timeout=SETTLE_TIMEOUT)
    counts = venue_counts(fs.venue, fs.api, burst.sent_ids, list(burst.accepted))
    row = _result(
        "1 kill -9 order worker mid-burst",
        burst,
        settled,
        counts,
        killed_after=killed_at,
        in_flight_at_kill=in_flight,
        venue_requests=counts["venue_requests"],
    )
    _check(fs, settled, counts)
    assert len(burst.accepted) == 200, burst.refused
    assert counts["never_at_venue"] == 0 and row.lost == 0


# --- 2. restart Redis (the broker) in the middle of a burst ------------------------------


def test_broker_restart_mid_burst_then_nothing_lost_nothing_doubled(fs):
    burst = Burst(fs.api, "rb", 200, ioc_bodies(fs.stack)).start()
    burst.wait_sent(70)
    in_flight = _in_flight(fs, burst)
    fs.redis.kill()  # SIGKILL; its AOF (fsync every second) has almost everything
    down_at = burst.sent
    time.sleep(2.0)
    fs.redis.start()
    burst.join()
    done = time.monotonic()
    settled = settle(fs.api, fs.venue, list(burst.accepted), since=done, timeout=SETTLE_TIMEOUT)
    counts = venue_counts(fs.venue, fs.api, burst.sent_ids, list(burst.accepted))
    row = _result(
        "2 Redis (broker) kill -9 + restart mid-burst",
        burst,
        settled,
        counts,
        killed_after=down_at,
        in_flight_at_kill=in_flight,
        refused_while_down=len(burst.refused),
        venue_requests=counts["venue_requests"],
    )
    _check(fs, settled, counts)
    assert len(burst.accepted) >= 150, burst.refused
    assert counts["never_at_venue"] == 0 and row.lost == 0


# --- 3. 30% of order requests answered 5xx or timeouts -----------------------------------


FAULTS_30 = {
    # 30% of order requests in all: before and after the venue executed them
    "error_rate": 0.08,
    "error_after_rate": 0.08,
    "timeout_rate": 0.03,
    "timeout_after_rate": 0.03,
    "drop_rate": 0.04,
    "drop_after_rate": 0.04,
    "timeout_ms": 5500,  # held past the OMS's 5 s client timeout
    "scope": "orders",
    "seed": 7,
}


def test_venue_errors_30_percent_then_no_duplicate_and_venue_truth(fs):
    fs.faults(**FAULTS_30)
    burst = Burst(fs.api, "e30", 120, ioc_bodies(fs.stack), threads=2, pace_s=0.05).start()
    burst.join()
    done = time.monotonic()
    settled = settle(fs.api, fs.venue, list(burst.accepted), since=done, timeout=SETTLE_TIMEOUT)
    fs.faults(reset=True)
    log = fs.venue.log(kind="new")
    faulted = sum(1 for e in log if (e.get("fault") or "").startswith("fault-"))
    after = sum(1 for e in log if "after-execute" in (e.get("fault") or ""))
    counts = venue_counts(fs.venue, fs.api, burst.sent_ids, list(burst.accepted))
    unavailable = sum(
        1 for o in settled.oms.values() if "VENUE_UNAVAILABLE" in (o.get("reason") or "")
    )
    _result(
        "3 venue 30% 5xx/timeouts/drops",
        burst,
        settled,
        counts,
        lost_ok=unavailable,
        venue_requests=counts["venue_requests"],
        faulted=faulted,
        faulted_after_execute=after,
        rejected_unavailable=unavailable,
    )
    _check(fs, settled, counts)
    _show_slowest(fs, settled)
    assert faulted >= 20, "the fault injection did not bite"
    # an order the venue never took was refused as VENUE_UNAVAILABLE (breaker), not lost
    assert counts["never_at_venue"] <= unavailable


# --- 4. the venue goes down, then comes back ---------------------------------------------


def test_venue_down_then_breaker_opens_fails_fast_then_recovers_and_reconciles(fs):
    body = ioc_bodies(fs.stack)
    threshold = 5  # venues.breaker.BreakerConfig.threshold
    fs.faults(error_rate=1.0, scope="all")  # every /api request: 503
    down = time.monotonic()
    before = Burst(fs.api, "vd-a", 12, body, threads=1, pace_s=0.1).start()
    opened = wait_for(
        lambda: (b := fs.breaker())["breaker"]["state"] == "open" and b, timeout=15, interval=0.1
    )
    open_s = time.monotonic() - down
    breaker = opened["breaker"]
    assert opened["status"] == "down"
    # opened by its rules: 5 failures that are half the window's calls, or 10 in a row
    assert breaker["failures"] >= threshold or breaker["streak"] >= 10, breaker
    before.join()
    # while open: new orders fail fast, never sent
    during = Burst(fs.api, "vd-b", 10, body, threads=1).start().join()
    assert set(during.statuses.values()) == {"REJECTED"}, during.statuses
    rejected = oms_orders(fs.api, list(during.accepted))
    assert all(o["reason"].startswith("VENUE_UNAVAILABLE") for o in rejected.values())
    fail_fast_ms = round(1000 * max(during.latencies), 1)
    assert fail_fast_ms < 1000
    time.sleep(3.0)  # stays down past a probe or two
    sent_while_down = sum(1 for e in fs.venue.log(kind="new") if e["fault"])
    fs.faults(reset=True)
    back = time.monotonic()
    closed = wait_for(lambda: fs.breaker()["breaker"]["state"] == "closed", timeout=20)
    close_s = time.monotonic() - back
    assert closed

    def recovery_run():
        runs = fs.admin.get("/api/v1/reconciliation/runs/", params={"limit": 20}).json()
        return next(
            (r for r in runs["results"] if r["trigger"] == "recovery" and r["status"] == "ok"),
            None,
        )

    run = wait_for(recovery_run, timeout=20, interval=0.3)
    accepted = list(before.accepted) + list(during.accepted)
    settled = settle(fs.api, fs.venue, accepted, since=back, timeout=SETTLE_TIMEOUT)
    counts = venue_counts(fs.venue, fs.api, before.sent_ids + during.sent_ids, accepted)
    unavailable = sum(1 for o in settled.oms.values() if "VENUE_UNAVAILABLE" in (o["reason"] or ""))
    burst = Burst(fs.api, "vd", 0, body)
    burst.n, burst.accepted = before.n + during.n, {**before.accepted, **during.accepted}
    burst.latencies = before.latencies + during.latencies
    _result(
        "4 venue down (100% 5xx), back",
        burst,
        settled,
        counts,
        lost_ok=unavailable,
        breaker_open_after_s=round(open_s, 2),
        failures_at_open=breaker["failures"],
        streak_at_open=breaker["streak"],
        rejected_unavailable=unavailable,
        fail_fast_max_ms=fail_fast_ms,
        requests_while_down=sent_while_down,
        breaker_closed_after_s=round(close_s, 2),
        recovery_run=run["id"],
    )
    _check(fs, settled, counts)
    assert counts["never_at_venue"] <= unavailable


# --- 5. the same execution report twice; a fill after a cancel ---------------------------


def test_report_delivered_twice_applied_once_and_fill_after_cancel_flagged_late(fs):
    api, app = fs.api, fs.celery()
    bid, ask = book(fs.stack)
    # (a) a real fill, delivered again twice through Celery
    r = api.post(
        "/api/v1/orders/",
        {
            "account": "HEDGE",
            "symbol": "BTC/USDT",
            "venue": "sim-a",
            "side": "buy",
            "type": "limit",
            "time_in_force": "IOC",
            "quantity": "0.002",
            "price": str((ask * D("1.01")).quantize(D("0.01"))),
            "client_order_id": "dup-fill-1",
        },
    )
    assert r.status_code == 201, r.text
    order = r.json()
    filled = wait_for(
        lambda: (o := api.get(f"/api/v1/orders/{order['id']}/").json())["status"] == "FILLED" and o,
        timeout=15,
    )
    fill = filled["fills"][0]
    report = {
        "kind": "fill",
        "source": "stream",
        "venue_order_id": filled["venue_order_id"],
        "trade_id": fill["venue_trade_id"],
        "quantity": fill["quantity"],
        "price": fill["price"],
        "fee": fill["fee"],
        "fee_currency": fill["fee_currency"],
    }
    t0 = time.monotonic()
    outcomes = [
        app.send_task(
            "oms.reports.apply",
            args=(order["id"], report),
            queue="oms.reports",
            ignore_result=False,
        ).get(timeout=20)
        for _ in range(2)
    ]
    assert outcomes == ["skipped", "skipped"]
    again = api.get(f"/api/v1/orders/{order['id']}/").json()
    assert len(again["fills"]) == len(filled["fills"])
    assert again["filled_quantity"] == filled["filled_quantity"]

    # (b) a resting order canceled, then a fill reported for it (twice)
    r = api.post(
        "/api/v1/orders/",
        {
            "account": "HEDGE",
            "symbol": "BTC/USDT",
            "venue": "sim-a",
            "side": "buy",
            "type": "limit",
            "quantity": "0.003",
            "price": str((bid * D("0.95")).quantize(D("0.01"))),
            "client_order_id": "late-fill-1",
        },
    )
    resting = r.json()
    wait_for(lambda: api.get(f"/api/v1/orders/{resting['id']}/").json()["status"] == "ACCEPTED")
    api.post(f"/api/v1/orders/{resting['id']}/cancel/")
    canceled = wait_for(
        lambda: (
            (o := api.get(f"/api/v1/orders/{resting['id']}/").json())["status"] == "CANCELED" and o
        ),
        timeout=15,
    )
    late = {
        "kind": "fill",
        "source": "stream",
        "venue_order_id": canceled["venue_order_id"],
        "trade_id": "late-trade-1",
        "quantity": "0.001",
        "price": resting["price"],
        "fee": "0",
        "fee_currency": "BTC",
    }
    late_outcomes = [
        app.send_task(
            "oms.reports.apply",
            args=(resting["id"], late),
            queue="oms.reports",
            ignore_result=False,
        ).get(timeout=20)
        for _ in range(2)
    ]
    elapsed = round(time.monotonic() - t0, 2)
    assert late_outcomes == ["applied", "skipped"]
    after = api.get(f"/api/v1/orders/{resting['id']}/").json()
    assert after["status"] == "CANCELED"
    assert [(f["venue_trade_id"], f["late"]) for f in after["fills"]] == [("late-trade-1", True)]
    assert after["filled_quantity"] == "0.001"
    assert any(e["kind"] == "OrderFilled" and e["late"] for e in after["events"])
    RESULTS.add(
        CaseResult(
            "5 report twice; fill after cancel",
            sent=6,
            accepted=2,
            duplicates=0,
            lost=0,
            resolve_s=elapsed,
            extra={
                "deliveries": "dup: skipped,skipped; late: applied,skipped",
                "late_flagged": True,
            },
        )
    )


# --- 6. a 429 storm ----------------------------------------------------------------------


def test_rate_limit_storm_then_all_back_off_together_no_ban(fs):
    storm_s = 4
    fs.faults(rate_limit_storm_s=storm_s)
    storm = time.monotonic()
    burst = Burst(fs.api, "rl", 40, ioc_bodies(fs.stack), threads=2, pace_s=0.05).start()
    paused = wait_for(lambda: fs.breaker()["rate_limit"]["paused_for_s"], timeout=10, interval=0.1)
    burst.join()
    settled = settle(fs.api, fs.venue, list(burst.accepted), since=storm, timeout=SETTLE_TIMEOUT)
    log = fs.venue.log(kind="new")
    hit_429 = sum(1 for e in log if e["outcome"] == "fault-429")
    banned = sum(1 for e in log if e["outcome"] == "fault-418")
    counts = venue_counts(fs.venue, fs.api, burst.sent_ids, list(burst.accepted))
    _result(
        "6 429 storm (4 s)",
        burst,
        settled,
        counts,
        order_requests_answered_429=hit_429,
        answered_418=banned,
        paused_s=paused,
        venue_requests=counts["venue_requests"],
    )
    _check(fs, settled, counts)
    assert banned == 0
    assert fs.stack.sim_get("/sim/faults")["ban_remaining_s"] == 0
    # every worker paused at the first 429: at most one order request per worker process
    # (orders x2, urgent, recon) reached the venue during the storm
    assert hit_429 <= 4, hit_429
    assert counts["never_at_venue"] == 0


# --- 7. orders placed at the venue behind the OMS's back ---------------------------------


def test_orders_behind_the_oms_back_then_surfaced_cancel_and_adopt(fs):
    bid, _ask = book(fs.stack)
    price = str((bid * D("0.9")).quantize(D("0.01")))
    for cid in ("manual-cancel-1", "manual-adopt-1"):
        fs.stack.sim_post(
            "/sim/orders",
            {
                "account": "default",
                "symbol": "BTCUSDT",
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.001",
                "price": price,
                "timeInForce": "GTC",
                "clientOrderId": cid,
            },
        )
    venue_id = fs.breaker()["id"]
    t0 = time.monotonic()
    # what the beat does every 30 s, now (the recovery and startup runs are the same task)
    fs.celery().send_task("oms.recon.reconcile_venue", args=(venue_id, "manual"), queue="oms.recon")

    def surfaced():
        rows = fs.admin.get(
            "/api/v1/reconciliation/unknown-orders/", params={"state": "OPEN"}
        ).json()["results"]
        by_cid = {u["client_order_id"]: u for u in rows}
        return by_cid if {"manual-cancel-1", "manual-adopt-1"} <= set(by_cid) else None

    unknown = wait_for(surfaced, timeout=20, interval=0.3)
    surfaced_s = round(time.monotonic() - t0, 2)
    assert fs.api.get("/api/v1/reconciliation/unknown-orders/").status_code == 403  # trader
    # cancel one at the venue through the OMS
    r = fs.admin.post(
        f"/api/v1/reconciliation/unknown-orders/{unknown['manual-cancel-1']['id']}/cancel/"
    )
    assert r.status_code == 202 and r.json()["state"] == "CANCELED", r.text
    assert fs.venue.order("manual-cancel-1")["status"] == "CANCELED"
    # adopt the other: an OMS order with the venue's ids, then cancel it the usual way
    r = fs.admin.post(
        f"/api/v1/reconciliation/unknown-orders/{unknown['manual-adopt-1']['id']}/adopt/",
        {"account": "DEMO"},
    )
    assert r.status_code == 201, r.text
    adopted = r.json()
    assert adopted["status"] == "ACCEPTED" and adopted["venue_order_id"]
    assert fs.api.post(f"/api/v1/orders/{adopted['id']}/cancel/").status_code == 202
    wait_for(lambda: fs.api.get(f"/api/v1/orders/{adopted['id']}/").json()["status"] == "CANCELED")
    assert fs.venue.order("manual-adopt-1")["status"] == "CANCELED"
    RESULTS.add(
        CaseResult(
            "7 orders behind the OMS's back",
            sent=2,
            accepted=2,
            duplicates=0,
            lost=0,
            resolve_s=surfaced_s,
            extra={"surfaced": 2, "canceled": 1, "adopted": 1},
        )
    )


# --- 8. the API takes orders while every worker is stopped -------------------------------

WORKERS_DOWN_S = 30.0


@pytest.mark.soak
def test_workers_stopped_30s_then_every_order_goes_out(fs):
    workers = [n for n in fs.stack.procs if n.startswith("worker-")]
    with fs.lock:
        fs.supervised = False
    for name in workers:
        fs.stack.procs[name].stop()
    stopped = time.monotonic()
    n = 60
    pace = WORKERS_DOWN_S / n
    burst = Burst(fs.api, "wd", n, ioc_bodies(fs.stack), threads=1, pace_s=pace).start()
    burst.join(timeout=WORKERS_DOWN_S + 30)
    while time.monotonic() - stopped < WORKERS_DOWN_S:
        time.sleep(0.1)
    assert set(burst.statuses.values()) == {"PENDING_NEW"}, burst.statuses
    held = venue_ids(fs.api, burst.sent_ids)
    assert len(held) == n
    assert not fs.venue.new_order_log(held.values()), "nothing may reach the venue without workers"
    for name in workers:
        fs.stack.restart(name)
    fs.supervised = True
    back = time.monotonic()
    settled = settle(fs.api, fs.venue, list(burst.accepted), since=back, timeout=SETTLE_TIMEOUT)
    counts = venue_counts(fs.venue, fs.api, burst.sent_ids, list(burst.accepted))
    row = _result(
        f"8 workers stopped {WORKERS_DOWN_S:.0f} s",
        burst,
        settled,
        counts,
        down_s=round(back - stopped, 1),
    )
    _check(fs, settled, counts)
    assert len(burst.accepted) == n and counts["never_at_venue"] == 0 and row.lost == 0


# --- (beyond the list) an amend whose replacement was placed but answered 5xx -----------


def test_amend_in_doubt_then_replacement_found_not_orphaned(fs):
    """Cancel-replace: the old order's cancel is answered, the new order is placed but
    its answer is a 503. Resolution must find the replacement (not settle on the old
    order's CANCELED and leave the new one live at the venue unknown to the OMS)."""
    api = fs.api
    bid, _ask = book(fs.stack)
    price = (bid * D("0.95")).quantize(D("0.01"))
    r = api.post(
        "/api/v1/orders/",
        {
            "account": "DEMO",
            "symbol": "BTC/USDT",
            "venue": "sim-a",
            "side": "buy",
            "type": "limit",
            "quantity": "0.002",
            "price": str(price),
            "client_order_id": "amend-doubt-1",
        },
    )
    assert r.status_code == 201, r.text
    order = r.json()
    wait_for(lambda: api.get(f"/api/v1/orders/{order['id']}/").json()["status"] == "ACCEPTED")
    # the next two order requests: the cancel goes through, the new order executes and
    # its answer is lost (seed 15 draws 0.965 then 0.012)
    fs.faults(error_after_rate=0.5, scope="orders", seed=15)
    t0 = time.monotonic()
    new_price = price - D("1.00")
    r = api.post(f"/api/v1/orders/{order['id']}/amend/", {"price": str(new_price)})
    assert r.status_code == 202, r.text
    new_id = f"{order['venue_client_order_id']}/1"  # the amend's id at the venue
    wait_for(lambda: len(fs.venue.log(client_order_id=new_id)) == 1, timeout=15)
    fs.faults(reset=True)
    assert fs.venue.log(client_order_id=new_id)[0]["fault"] == "fault-5xx-after-execute"

    def replaced():
        body = api.get(f"/api/v1/orders/{order['id']}/").json()
        return body if body["status"] not in ("PENDING_REPLACE",) else None

    done = wait_for(replaced, timeout=30, interval=0.3)
    resolve_s = round(time.monotonic() - t0, 2)
    venue_new = fs.venue.order(new_id)
    assert venue_new["status"] == "NEW"
    assert done["status"] == "ACCEPTED", done
    assert D(done["price"]) == new_price and done["venue_order_id"] == str(venue_new["orderId"])
    assert fs.api.post(f"/api/v1/orders/{order['id']}/cancel/").status_code == 202
    wait_for(lambda: api.get(f"/api/v1/orders/{order['id']}/").json()["status"] == "CANCELED")
    assert fs.venue.order(new_id)["status"] == "CANCELED"
    RESULTS.add(
        CaseResult(
            "(extra) amend in doubt: replacement placed, answer lost",
            sent=1,
            accepted=1,
            duplicates=0,
            lost=0,
            resolve_s=resolve_s,
            extra={"orphans_at_venue": 0},
        )
    )
