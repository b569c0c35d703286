"""The whole OMS under the real process manager (issue 12, items 1 and 8): supervisord
runs the processes of ``oms up``'s table; SIGKILL of the order worker is a crash it
restarts, health shows the restart, orders still flow, ``/metrics`` counts it all, and
stopping leaves no process behind.

Its own database, Redis db and OMS_HOME, so the shared session stack is not touched.
"""

from __future__ import annotations

import os
import signal
from decimal import Decimal as D

import psutil
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from omsweb import cli, procmgr
from omsweb import stack as stack_mod
from omsweb.stack import Proc, Stack, free_port, wait_http
from tests.conftest import ROOT
from tests.system.conftest import order_status, wait_for

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def supervised(tmp_path_factory):
    home = tmp_path_factory.mktemp("supervised")
    sim_port, web_port = free_port(), free_port()
    redis_db = int(os.environ.get("OMS_TEST_REDIS_DB", "15")) - 3
    env = stack_mod.isolated_env(dict(os.environ), db_name="test_oms_supervised", redis_db=redis_db)
    env.update(OMS_HOME=str(home), OMS_LOG_LEVEL="INFO", **stack_mod.sim_credentials_env())
    env["OMS_FIX_PORT"] = str(free_port())  # the FIX gateway, off the default port
    token = stack_mod.setup_database(env, sim_port, "supervised-trader")
    programs = {
        name: stack_mod._beat_schedule_in(argv, home)
        for name, argv in cli.processes(host="127.0.0.1", port=web_port, sim=False).items()
    }
    programs["sim-a"] = stack_mod.sim_argv(sim_port)
    config = procmgr.write_config(home, programs, directory=ROOT)
    supervisor = Proc(procmgr.supervisord_argv(config), env, home / "supervisord.out")
    stack = Stack(
        web=f"http://127.0.0.1:{web_port}",
        sim=f"http://127.0.0.1:{sim_port}",
        token=token,
        env=env,
        logdir=home,
    )
    stack.procs["supervisord"] = supervisor  # for its log in failure messages
    try:
        # on a loaded machine the web process alone can take longer than wait_healthy's
        # 20 s to answer its first request
        wait_http(stack.web + "/healthz", timeout=120)
        stack.wait_healthy(timeout=120)
        yield stack, supervisor, home
    finally:
        procmgr.stop(home, supervisor.pid)
        supervisor.stop()


def scrape(base: str) -> dict[tuple[str, tuple], float]:
    r = requests.get(base + "/metrics", timeout=10)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_order_worker_killed_then_restarted_shown_in_health_and_orders_still_flow(supervised):
    stack, supervisor, home = supervised
    api = stack.api()
    before = scrape(stack.web)
    health = api.get("/api/v1/health/").json()
    assert set(health["processes"]) >= {"web", "worker-orders-sim-a", "worker-urgent", "sim-a"}
    assert all(p["state"] == "RUNNING" for p in health["processes"].values()), health
    killed = health["processes"]["worker-orders-sim-a"]["pid"]
    pool = [c.pid for c in psutil.Process(killed).children(recursive=True)]

    # Act: the order worker crashes
    os.kill(killed, signal.SIGKILL)
    seen: list[tuple[int, str, str]] = []

    def restarted() -> dict | None:
        r = api.get("/api/v1/health/")
        proc = r.json().get("processes", {}).get("worker-orders-sim-a", {})
        seen.append((r.status_code, r.json()["status"], proc.get("state", "")))
        return proc if proc.get("state") == "RUNNING" and proc["pid"] != killed else None

    wait_for(restarted, timeout=60, interval=0.2)

    # Assert: health showed it restarting (not RUNNING, OMS degraded), then up again
    assert any(
        code == 503 and status == "degraded" and state in ("STARTING", "BACKOFF", "EXITED")
        for code, status, state in seen
    ), seen
    stack.wait_healthy(timeout=60)  # the new worker consumes its queues
    # the dead worker's pool children do not outlive it
    wait_for(lambda: not [p for p in pool if _alive(p)], timeout=30)
    wait_for(
        lambda: "event=process_restart process=worker-orders-sim-a" in supervisor.tail(400), 10
    )

    # an order submitted after the restart still reaches the venue
    price = D(stack.sim_get("/sim/state", depth=1)["books"]["BTCUSDT"]["bids"][0][0]) * D("0.9")
    r = api.post(
        "/api/v1/orders/",
        {"client_order_id": "supervised-1", "account": "DEMO", "symbol": "BTC/USDT",
         "side": "buy", "type": "limit", "quantity": "0.001", "venue": "sim-a",
         "price": str(price.quantize(D("0.01")))},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    wait_for(order_status(api, r.json()["id"], "ACCEPTED", "FILLED"), timeout=30)

    # /metrics from the running web process: the series moved
    after = scrape(stack.web)
    restarts = "oms_process_restarts_total"
    assert sample(after, restarts, process="worker-orders-sim-a") == 1
    acks = "oms_order_submit_ack_seconds_count"
    assert sample(after, acks, venue="sim-a") >= sample(before, acks, venue="sim-a") + 1
    assert sample(after, "oms_orders", status="ACCEPTED") >= 1
    assert sample(after, "oms_process_running", process="worker-orders-sim-a") == 1
    assert sample(after, "oms_alerts_total", event="process_restart") == 1


def test_stop_then_no_process_left(supervised):
    stack, supervisor, home = supervised
    tree = [psutil.Process(supervisor.pid), *psutil.Process(supervisor.pid).children(True)]
    assert len(tree) >= 8  # supervisord, its listener, web, sim, workers and their pools
    # Act: what Ctrl-C of `oms up` does
    procmgr.stop(home, supervisor.pid)
    # Assert
    wait_for(lambda: not [p.pid for p in tree if _alive(p.pid)], timeout=30)
    assert procmgr.states(home) is None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
