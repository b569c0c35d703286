"""Reconciliation trusts nothing (issue 12, item 3, "Show"), on the whole OMS as real
processes with the simulated exchange over HTTP through ccxt:

* a forged mismatch (the OMS says CANCELED, or FILLED by a fill the venue never made,
  while the simulator still works the order) is found and shown as findings;
* the simulator restarts and forgets more working orders than the threshold: nothing is
  closed, the venue goes to REDUCING, the alert is logged, and an operator's
  confirmation through the API closes them through the engine.

The module runs a stack of its own (database, redis-server) because it restarts the
simulated exchange.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from omsweb import stack as stack_mod
from omsweb.stack import free_port, wait_for
from tests.system.fault_helpers import PatientApi, RedisServer, book

pytestmark = [pytest.mark.system, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
FINDINGS = "/api/v1/reconciliation/findings/"


class ReconStack:
    def __init__(self, stack, redis_server, admin_token: str) -> None:
        self.stack = stack
        self.redis = redis_server
        self.api = PatientApi(stack.web, stack.token)  # a trader of DEMO and HEDGE
        self.admin = PatientApi(stack.web, admin_token)

    def venue_id(self) -> int:
        rows = self.admin.get("/api/v1/venues/").json()["results"]
        return next(v["id"] for v in rows if v["name"] == "sim-a")

    def reconcile(self) -> None:
        """What the beat does every 30 s, now."""
        from celery import Celery

        url = self.stack.env["REDIS_URL"]
        app = Celery("recon-tests", broker=url, backend=url)
        app.send_task(
            "oms.recon.reconcile_venue", args=(self.venue_id(), "manual"), queue="oms.recon"
        )

    def forge(self, what: str, order_id: int) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "tests.system.recon_forge", what, str(order_id)],
            env=self.stack.env, cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.split()[-1]

    def resting_buy(self, cid: str, price: D) -> dict:
        r = self.api.post(
            "/api/v1/orders/",
            {"client_order_id": cid, "account": "DEMO", "symbol": "BTC/USDT", "side": "buy",
             "type": "limit", "quantity": "0.001", "price": str(price), "venue": "sim-a"},
        )  # fmt: skip
        assert r.status_code == 201, r.text
        return r.json()

    def status(self, order_id: int) -> dict:
        return self.api.get(f"/api/v1/orders/{order_id}/").json()

    def findings(self, api=None, **params) -> list[dict]:
        r = (api or self.admin).get(FINDINGS, params={"limit": 200, **params})
        assert r.status_code == 200, r.text
        return r.json()["results"]

    def venue_state(self) -> str:
        body = self.admin.get("/api/v1/risk/trading-state/").json()
        rows = body if isinstance(body, list) else body.get("results", body.get("states", []))
        for row in rows:
            if row.get("scope") == "venue" and row.get("target") == "sim-a":
                return row["state"]
        return "ACTIVE"


def _logdir() -> Path:
    """The stack's logs under .oms/recon-stack/, the last 3 runs kept."""
    import shutil

    base = ROOT / ".oms" / "recon-stack"
    base.mkdir(parents=True, exist_ok=True)
    for old in sorted(base.iterdir(), key=lambda p: p.stat().st_mtime)[:-2]:
        shutil.rmtree(old, ignore_errors=True)
    logdir = base / time.strftime(f"%Y%m%d-%H%M%S-{os.getpid()}")
    logdir.mkdir()
    return logdir


@pytest.fixture(scope="module")
def rs():
    logdir = _logdir()
    redis_server = RedisServer(logdir / "redis")
    redis_server.start()
    base = {**os.environ, "REDIS_URL": redis_server.url(0)}
    env = stack_mod.isolated_env(base, db_name="test_oms_recon", redis_db=0)
    env.update(OMS_HOME=str(logdir), OMS_LOG_LEVEL="INFO")
    sim_port = free_port()
    try:
        token = stack_mod.setup_database(env, sim_port, "recon-trader")
        admin = subprocess.run(
            [sys.executable, "-m", "tests.system.fault_setup", "recon-admin"],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True,
        ).stdout.split()[-1]  # fmt: skip
        # on a loaded machine (the CI box runs other stacks) the workers can take more
        # than the default minute to report to the health check
        running = stack_mod.launch(
            env, logdir, token=token, sim_port=sim_port, healthy_timeout=180.0
        )
    except Exception:
        redis_server.stop()
        raise
    yield ReconStack(running, redis_server, admin)
    running.stop()
    redis_server.stop()


def _accepted(rs: ReconStack, order_id: int) -> dict:
    return wait_for(
        lambda: (o := rs.status(order_id)) and o["status"] == "ACCEPTED" and o, timeout=20
    )


def test_forged_state_mismatch_then_found_and_shown(rs):
    # Arrange: two resting buys at the venue, far from the market
    bid, _ask = book(rs.stack)
    price = (bid * D("0.9")).quantize(D("0.01"))
    canceled = rs.resting_buy(f"rc-cxl-{os.getpid()}", price)
    filled = rs.resting_buy(f"rc-fil-{os.getpid()}", price - 1)
    for order in (canceled, filled):
        _accepted(rs, order["id"])
    # forge the OMS side: CANCELED (a lost cancel answer), FILLED by a fill the venue
    # never made; the simulator still works both, unfilled
    assert rs.forge("canceled", canceled["id"]) == "CANCELED"
    assert rs.forge("ghost-fill", filled["id"]) == "FILLED"
    open_at_sim = {o["clientOrderId"] for o in book_orders(rs)}
    # the venue knows the orders by the OMS's own venue-side client ids
    assert {canceled["venue_client_order_id"], filled["venue_client_order_id"]} <= open_at_sim
    time.sleep(5.5)  # past the in-flight grace of the last change
    # Act
    rs.reconcile()

    def found():
        rows = rs.findings(open="true")
        by = {(f["kind"], f["order"]): f for f in rows}
        want = [("STATUS_MISMATCH", canceled["id"]), ("STATUS_MISMATCH", filled["id"]),
                ("FILL_MISSING_AT_VENUE", filled["id"])]  # fmt: skip
        return by if all(k in by for k in want) else None

    by = wait_for(found, timeout=30, interval=0.5)
    # Assert: critical, explained, and shown to the trader who owns the orders
    mismatch = by[("STATUS_MISMATCH", canceled["id"])]
    assert mismatch["severity"] == "CRITICAL" and mismatch["venue"] == "sim-a"
    assert "is CANCELED in the OMS but NEW at sim-a" in mismatch["message"]
    assert by[("FILL_MISSING_AT_VENUE", filled["id"])]["severity"] == "CRITICAL"
    mine = {(f["kind"], f["order"]) for f in rs.findings(rs.api, open="true")}
    assert ("STATUS_MISMATCH", canceled["id"]) in mine
    # nothing was "fixed" behind anyone's back
    assert rs.status(canceled["id"])["status"] == "CANCELED"
    assert rs.status(filled["id"])["status"] == "FILLED"
    print(f"findings: {sorted(by)}")


def book_orders(rs: ReconStack) -> list[dict]:
    state = rs.stack.sim_get("/sim/state", depth=1)
    return [o for orders in state["open_orders"].values() for o in orders]


def test_venue_forgets_many_orders_then_alert_reducing_and_close_only_on_confirmation(rs):
    # Arrange: 6 working orders (the threshold is 5)
    bid, _ask = book(rs.stack)
    price = (bid * D("0.92")).quantize(D("0.01"))
    orders = [rs.resting_buy(f"rc-mm{i}-{os.getpid()}", price - i) for i in range(6)]
    for order in orders:
        _accepted(rs, order["id"])
    ids = sorted(o["id"] for o in orders)
    # every order past the in-flight grace before the venue forgets them, so that any
    # run (the beat's too) sees all six missing at once, not the older ones first
    time.sleep(5.5)
    # Act: the simulated exchange restarts and forgets every order
    rs.stack.restart("sim-a")
    rs.stack.wait_healthy(120.0)
    assert not book_orders(rs)
    rs.reconcile()
    alert = wait_for(
        lambda: next(iter(rs.findings(kind="MASS_MISSING", open="true")), None),
        timeout=40, interval=0.5,
    )  # fmt: skip
    # Assert: an alert, the venue REDUCING, and not one order closed
    assert alert["severity"] == "CRITICAL" and alert["venue"] == "sim-a"
    assert set(ids) <= set(alert["detail"]["orders"]), alert
    assert rs.venue_state() == "REDUCING"
    time.sleep(1.0)
    assert {rs.status(i)["status"] for i in ids} == {"ACCEPTED"}
    log = (rs.stack.logdir / "worker-recon.log").read_text()
    assert "event=recon_mass_missing venue=sim-a" in log and "WARNING" in log
    # a trader may not confirm; an operator does, through the API
    assert rs.api.post(f"{FINDINGS}{alert['id']}/confirm/").status_code in (403, 404)
    r = rs.admin.post(f"{FINDINGS}{alert['id']}/confirm/")
    assert r.status_code == 200, r.text
    assert set(ids) <= set(r.json()["closed"])
    for i in ids:
        order = rs.status(i)
        assert order["status"] == "CANCELED", order
        assert "closed on confirmation by recon-admin" in order["reason"]
    assert rs.findings(kind="MASS_MISSING", open="true") == []
    # the venue stays REDUCING until someone releases it (its own audited action)
    assert rs.venue_state() == "REDUCING"
    r = rs.admin.post(
        "/api/v1/risk/kill-switch/",
        {"scope": "venue", "target": "sim-a", "state": "ACTIVE", "reason": "recon test done"},
    )
    assert r.status_code in (200, 201), r.text
