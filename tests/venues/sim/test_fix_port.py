"""The simulated exchange's FIX port as real processes (``python -m venues.sim
--fix-port``: the simulator and its QuickFIX acceptor child), driven by a simplefix client
and by the REST side of the same simulator: one book, one set of orders."""

from __future__ import annotations

import hashlib
import hmac
import sys
import time

import pytest
import requests

from omsweb.stack import Proc, free_port, wait_for
from tests.fixgw.client import FixClient

KEY, SECRET = "fix-key", "fix-secret"


@pytest.fixture(scope="module")
def simex(tmp_path_factory):
    home = tmp_path_factory.mktemp("simfix")
    port, fix_port = free_port(), free_port()
    log = home / "simex.log"
    argv = [
        sys.executable, "-m", "venues.sim", "--name", "simfix", "--port", str(port),
        "--paused", "--api-key", KEY, "--api-secret", SECRET,
        "--fix-port", str(fix_port), "--fix-store", str(home / "fix"),
    ]  # fmt: skip
    proc = Proc(argv, {}, log)
    try:
        wait_for(lambda: "acceptor on" in log.read_text() or not proc.alive(), timeout=60)
        assert proc.alive(), log.read_text()
        yield f"http://127.0.0.1:{port}", fix_port
    finally:
        proc.stop()


def logon(fix_port: int, username: str = KEY, password: str = SECRET) -> FixClient:
    client = FixClient(fix_port, "OMS", "SIMEX")
    client.logon(username, password)
    reply = client.receive()
    assert reply is not None and reply.get(35) == b"A", reply
    return client


def new_order(client: FixClient, cl: str, price: str = "50000.00") -> None:
    client.send("D", (11, cl), (55, "BTC/USDT"), (54, "1"), (60, "20261206-13:00:00"),
                (38, "0.01"), (40, "2"), (44, price), (59, "1"))  # fmt: skip


def test_logon_with_a_wrong_secret_then_logout_with_the_reason(simex):
    _, fix_port = simex
    client = FixClient(fix_port, "OMS", "SIMEX")
    try:
        client.logon(KEY, "wrong")
        reply = client.receive()
        assert reply is not None and reply.get(35) == b"5"
        assert b"unknown API key or secret" in reply.get(58)
    finally:
        client.close()


def test_order_over_fix_then_in_rest_open_orders_and_rest_cancel_reported_over_fix(simex):
    base, fix_port = simex
    client = logon(fix_port)
    try:
        new_order(client, "fix-1")
        new = client.receive()
        assert (new.get(35), new.get(150), new.get(11)) == (b"8", b"0", b"fix-1")
        state = requests.get(f"{base}/sim/state", timeout=5).json()
        assert [o["clientOrderId"] for o in state["open_orders"]["default"]] == ["fix-1"]
        # the same order canceled over REST: reported over FIX
        signed("DELETE", base, "/api/v3/order", "symbol=BTCUSDT&origClientOrderId=fix-1")
        canceled = client.receive()
        assert (canceled.get(150), canceled.get(39), canceled.get(11)) == (b"4", b"4", b"fix-1")
    finally:
        client.close()


def signed(method: str, base: str, path: str, query: str) -> requests.Response:
    query += f"&timestamp={int(time.time() * 1000)}"
    signature = hmac.new(SECRET.encode(), query.encode(), hashlib.sha256).hexdigest()
    return requests.request(
        method, f"{base}{path}?{query}&signature={signature}", headers={"X-MBX-APIKEY": KEY},
        timeout=5,
    )  # fmt: skip


def test_crossing_order_over_fix_then_trade_reports_are_the_rest_trades(simex):
    base, fix_port = simex
    client = logon(fix_port)
    try:
        new_order(client, "fix-2", price="90000.00")
        reports = [client.receive()]
        while reports[-1].get(14) != b"0.01":
            reports.append(client.receive())
        trades = [r for r in reports if r.get(150) == b"F"]
        assert trades and trades[-1].get(39) == b"2"
        rest = signed("GET", base, "/api/v3/myTrades", "symbol=BTCUSDT").json()
        assert {r.get(17).decode() for r in trades} == {str(t["id"]) for t in rest}
        assert sum(float(r.get(32)) for r in trades) == pytest.approx(0.01)
    finally:
        client.close()
