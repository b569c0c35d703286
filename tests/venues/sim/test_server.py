"""The HTTP layer without ccxt: signing, malformed requests, headers, limits, admin API."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from tests.venues.sim.conftest import API_KEY, API_SECRET, RunningSim, SimThread, make_config

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[3]


def sign(query: str, secret: str = API_SECRET) -> str:
    return hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()


def signed(
    sim: RunningSim,
    method: str,
    path: str,
    params: dict[str, Any],
    *,
    where: str = "query",
    key: str | None = API_KEY,
    secret: str = API_SECRET,
    timestamp: int | None = None,
) -> requests.Response:
    p = dict(params)
    p.setdefault("timestamp", timestamp if timestamp is not None else int(time.time() * 1000))
    headers = {"X-MBX-APIKEY": key} if key is not None else {}
    url = f"{sim.api}/{path}"
    if where == "split":  # Binance's mixed mode: HMAC over query string + body
        items = list(p.items())
        q, b = urlencode(items[: len(items) // 2]), urlencode(items[len(items) // 2 :])
        b += "&signature=" + sign(q + b, secret)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return requests.request(method, f"{url}?{q}", data=b, headers=headers, timeout=5)
    q = urlencode(p)
    q += "&signature=" + sign(q, secret)
    if where == "body":
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return requests.request(method, url, data=q, headers=headers, timeout=5)
    return requests.request(method, f"{url}?{q}", headers=headers, timeout=5)


def err(resp: requests.Response) -> tuple[int, int]:
    body = resp.json()
    assert set(body) == {"code", "msg"}, body
    return resp.status_code, body["code"]


def limit_order(price: str = "50000.00", **extra: Any) -> dict[str, Any]:
    return {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": price,
        **extra,
    }


# ---------------------------------------------------------------------- signing


@pytest.mark.parametrize("where", ["query", "body", "split"])
def test_signature_locations(sim: RunningSim, where: str) -> None:
    r = signed(sim, "POST", "order", limit_order(newClientOrderId="sig-" + where), where=where)
    assert r.status_code == 200, r.text
    assert r.json()["clientOrderId"] == "sig-" + where
    assert r.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert int(r.headers["X-MBX-USED-WEIGHT-1M"]) >= 1


def test_auth_errors(sim: RunningSim) -> None:
    assert err(signed(sim, "GET", "account", {}, key=None)) == (401, -2014)
    assert err(signed(sim, "GET", "account", {}, key="unknown")) == (401, -2015)
    assert err(signed(sim, "GET", "account", {}, secret="bad")) == (400, -1022)
    r = requests.get(f"{sim.api}/account", headers={"X-MBX-APIKEY": API_KEY}, timeout=5)
    assert err(r) == (400, -1102)
    now = int(time.time() * 1000)
    assert err(signed(sim, "GET", "account", {}, timestamp=now + 5000)) == (400, -1021)
    assert err(signed(sim, "GET", "account", {}, timestamp=now - 6000)) == (400, -1021)
    ok = signed(sim, "GET", "account", {"recvWindow": 10000}, timestamp=now - 6000)
    assert ok.status_code == 200
    assert err(signed(sim, "GET", "account", {"recvWindow": 70000})) == (400, -1131)
    # tampering with a signed parameter breaks the signature
    q = urlencode({"symbol": "BTCUSDT", "timestamp": now})
    url = f"{sim.api}/openOrders?{q.replace('BTC', 'ETH')}&signature={sign(q)}"
    assert err(requests.get(url, headers={"X-MBX-APIKEY": API_KEY}, timeout=5)) == (400, -1022)


# ---------------------------------------------------------------------- malformed requests


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (limit_order(quantity="abc"), -1100),
        (limit_order(price="1e5"), -1100),
        (limit_order(price="-5"), -1100),
        (limit_order(quantity=""), -1102),
        ({**limit_order(), "symbol": "NOPEUSDT"}, -1121),
        ({k: v for k, v in limit_order().items() if k != "symbol"}, -1102),
        ({k: v for k, v in limit_order().items() if k != "timeInForce"}, -1102),
        (limit_order(side="HOLD"), -1117),
        (limit_order(type="STOP_LOSS"), -1116),
        (limit_order(timeInForce="GTX"), -1115),
        (limit_order(foo="bar"), -1104),
        (limit_order(newClientOrderId="bad id with spaces"), -1100),
        (limit_order(newOrderRespType="EVERYTHING"), -1100),
        (limit_order(stopPrice="1"), -1106),
        ({**limit_order(), "type": "MARKET"}, -1106),
    ],
)
def test_malformed_order_requests(sim: RunningSim, params: dict[str, Any], code: int) -> None:
    r = signed(sim, "POST", "order", params, where="body")
    assert err(r) == (400, code), r.text
    assert "X-MBX-USED-WEIGHT-1M" in r.headers


def test_malformed_misc(sim: RunningSim) -> None:
    base = sim.api
    assert err(requests.get(f"{base}/depth", timeout=5)) == (400, -1102)
    assert err(requests.get(f"{base}/depth?symbol=BTCUSDT&limit=x", timeout=5)) == (400, -1100)
    assert err(requests.get(f"{base}/ticker/24hr?symbols=[BTCUSDT", timeout=5)) == (400, -1100)
    assert err(requests.get(f"{base}/ticker/24hr?symbols=%7B%7D", timeout=5)) == (400, -1100)
    assert err(requests.get(f"{base}/depth?symbol=BTCUSDT&symbol=ETHUSDT", timeout=5)) == (
        400,
        -1101,
    )
    r = requests.post(
        f"{base}/order",
        data=b'{"symbol": "BTCUSDT"}',
        headers={"Content-Type": "application/json", "X-MBX-APIKEY": API_KEY},
        timeout=5,
    )
    assert err(r) == (400, -1100)
    r = requests.post(
        f"{base}/order", data=b"\xff\xfe", headers={"X-MBX-APIKEY": API_KEY}, timeout=5
    )
    assert r.status_code == 400 and "code" in r.json()
    assert requests.get(f"{base}/nothing", timeout=5).status_code == 404
    assert requests.put(f"{base}/order", timeout=5).status_code == 405
    r = signed(sim, "GET", "order", {"symbol": "BTCUSDT"})
    assert err(r) == (400, -1102)
    r = signed(sim, "GET", "order", {"symbol": "BTCUSDT", "orderId": "12x"})
    assert err(r) == (400, -1100)
    r = signed(sim, "GET", "myTrades", {"symbol": "BTCUSDT", "fromId": 1, "startTime": 1})
    assert err(r) == (400, -1128)
    # admin API: bad JSON and bad values are 400 with a message, never a 500
    r = requests.post(f"{sim.base}/sim/faults", data=b"{nope", timeout=5)
    assert r.status_code == 400 and "error" in r.json()
    for bad in ({"reject_rate": 2}, {"nope": 1}, {"scope": "x"}, {"latency_ms": "abc"}, [1]):
        r = requests.post(f"{sim.base}/sim/faults", json=bad, timeout=5)
        assert r.status_code == 400, bad
    r = requests.post(f"{sim.base}/sim/market", json={"mid": {"BTC/USDT": "abc"}}, timeout=5)
    assert r.status_code == 400


def test_public_endpoints_shapes(sim: RunningSim) -> None:
    base = sim.api
    assert requests.get(f"{base}/ping", timeout=5).json() == {}
    assert (
        abs(requests.get(f"{base}/time", timeout=5).json()["serverTime"] - time.time() * 1000)
        < 5000
    )
    info = requests.get(f"{base}/exchangeInfo?symbol=ETHUSDT", timeout=5).json()
    assert [s["symbol"] for s in info["symbols"]] == ["ETHUSDT"]
    filters = {f["filterType"]: f for f in info["symbols"][0]["filters"]}
    assert {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL", "MIN_NOTIONAL", "MARKET_LOT_SIZE"} <= set(
        filters
    )
    assert filters["LOT_SIZE"]["stepSize"] == "0.00010000"
    one = requests.get(f"{base}/ticker/24hr?symbol=BTCUSDT", timeout=5).json()
    assert one["symbol"] == "BTCUSDT" and float(one["bidPrice"]) < float(one["askPrice"])
    many = requests.get(
        f"{base}/ticker/24hr", params={"symbols": '["BTCUSDT","ETHUSDT"]'}, timeout=5
    )
    assert [t["symbol"] for t in many.json()] == ["BTCUSDT", "ETHUSDT"]
    assert many.headers["X-MBX-USED-WEIGHT-1M"]
    price = requests.get(f"{base}/ticker/price?symbol=BTCUSDT", timeout=5).json()
    assert set(price) == {"symbol", "price"}
    bt = requests.get(f"{base}/ticker/bookTicker", timeout=5).json()
    assert len(bt) == 2 and set(bt[0]) == {"symbol", "bidPrice", "bidQty", "askPrice", "askQty"}
    assert requests.get(f"{base}/avgPrice?symbol=BTCUSDT", timeout=5).json()["mins"] == 5
    assert requests.get(f"{base}/trades?symbol=BTCUSDT", timeout=5).json() == []


def test_weights_add_up(sim: RunningSim) -> None:
    r1 = requests.get(f"{sim.api}/depth?symbol=BTCUSDT&limit=1000", timeout=5)
    r2 = requests.get(f"{sim.api}/exchangeInfo", timeout=5)
    assert int(r2.headers["X-MBX-USED-WEIGHT-1M"]) - int(r1.headers["X-MBX-USED-WEIGHT-1M"]) == 20


def test_order_count_limit(sim: RunningSim) -> None:
    sim.call(lambda: setattr(sim.sim.config, "order_limit_10s", 3))
    try:
        codes = [
            signed(sim, "POST", "order", limit_order(price=f"{50000 + i}.00")) for i in range(4)
        ]
        assert [r.status_code for r in codes[:3]] == [200, 200, 200]
        assert err(codes[3]) == (429, -1015)
        assert "Retry-After" in codes[3].headers
        assert codes[3].headers["X-MBX-ORDER-COUNT-10S"] == "4"
        log = sim.admin("GET", "/sim/requests", params={"outcome": "rate-limited"})
        assert log["count"] == 1
    finally:
        sim.call(lambda: setattr(sim.sim.config, "order_limit_10s", 100))


def test_resp_types_and_all_orders(sim: RunningSim) -> None:
    ack = signed(sim, "POST", "order", limit_order(newOrderRespType="ACK")).json()
    assert set(ack) == {"symbol", "orderId", "orderListId", "clientOrderId", "transactTime"}
    result = signed(sim, "POST", "order", limit_order(newOrderRespType="RESULT")).json()
    assert result["status"] == "NEW" and "fills" not in result
    full = signed(sim, "POST", "order", limit_order()).json()
    assert full["fills"] == []
    test = signed(sim, "POST", "order/test", limit_order())
    assert test.status_code == 200 and test.json() == {}
    orders = signed(sim, "GET", "allOrders", {"symbol": "BTCUSDT"}).json()
    assert [o["orderId"] for o in orders] == [ack["orderId"], result["orderId"], full["orderId"]]
    orders = signed(
        sim, "GET", "allOrders", {"symbol": "BTCUSDT", "orderId": result["orderId"]}
    ).json()
    assert len(orders) == 2
    cancel = signed(
        sim,
        "DELETE",
        "order",
        {"symbol": "BTCUSDT", "orderId": ack["orderId"], "newClientOrderId": "cx"},
    )
    body = cancel.json()
    assert body["status"] == "CANCELED" and body["clientOrderId"] == "cx"
    assert body["origClientOrderId"] == ack["clientOrderId"]
    assert len(signed(sim, "GET", "openOrders", {}).json()) == 2


# ---------------------------------------------------------------------- admin API


def test_admin_endpoints(sim: RunningSim) -> None:
    health = sim.admin("GET", "/sim/health")
    assert health["status"] == "ok" and health["name"] == "sim-test"
    state = sim.admin("GET", "/sim/state", params={"depth": 3})
    assert set(state) >= {"name", "time", "market", "books", "balances", "open_orders"}
    assert len(state["books"]["BTCUSDT"]["bids"]) == 3
    assert state["balances"]["default"]["USDT"]["free"] == "1000000"
    assert state["market"]["symbols"]["BTCUSDT"]["mid"] == "60000.00"

    m = sim.admin("POST", "/sim/market", json={"mid": {"BTC/USDT": "61000"}, "paused": True})
    assert m["symbols"]["BTCUSDT"]["mid"] == "61000.00" and m["paused"] is True
    book = requests.get(f"{sim.api}/depth?symbol=BTCUSDT&limit=1", timeout=5).json()
    assert book["bids"][0][0] == "60999.99000000"

    o = sim.admin(
        "POST",
        "/sim/orders",
        json={
            "symbol": "BTC/USDT",
            "side": "SELL",
            "type": "LIMIT",
            "quantity": "0.5",
            "price": "60999.99",
        },
    )
    assert o["status"] == "FILLED"  # took the house bid
    state = sim.admin("GET", "/sim/state")
    assert state["balances"]["default"]["BTC"]["free"] == "99.5"

    bal = sim.admin("POST", "/sim/balances", json={"balances": {"USDT": "10"}})
    assert bal["balances"]["USDT"]["free"] == "10"
    r = signed(sim, "POST", "order", limit_order())
    assert err(r) == (400, -2010)

    faults = sim.admin(
        "POST", "/sim/faults", json={"latency_ms": 5, "jitter_ms": 2, "jitter": "exponential"}
    )
    assert faults["latency_ms"] == 5 and faults["jitter"] == "exponential"
    assert sim.admin("GET", "/sim/faults")["latency_ms"] == 5

    reqs = sim.admin("GET", "/sim/requests")
    assert reqs["count"] == 1
    entry = reqs["requests"][0]
    assert entry["outcome"] == "rejected" and entry["error_code"] == -2010
    assert entry["account"] == "default" and entry["kind"] == "new"

    assert sim.admin("POST", "/sim/reset") == {"status": "reset"}
    assert sim.admin("GET", "/sim/requests")["count"] == 0
    assert sim.admin("GET", "/sim/faults")["latency_ms"] == 0
    assert sim.admin("GET", "/sim/state")["balances"]["default"]["USDT"]["free"] == "1000000"


def test_request_log_counts_duplicates(sim: RunningSim) -> None:
    for _ in range(2):
        signed(sim, "POST", "order", limit_order(newClientOrderId="same"))
    signed(sim, "DELETE", "order", {"symbol": "BTCUSDT", "origClientOrderId": "same"})
    log = sim.admin("GET", "/sim/requests", params={"client_order_id": "same"})
    assert [(e["kind"], e["outcome"]) for e in log["requests"]] == [
        ("new", "accepted"),
        ("new", "rejected"),
        ("cancel", "canceled"),
    ]
    assert log["requests"][1]["error_msg"] == "Duplicate order sent."
    only_new = sim.admin("GET", "/sim/requests", params={"client_order_id": "same", "kind": "new"})
    assert only_new["count"] == 2
    since = sim.admin("GET", "/sim/requests", params={"since_seq": log["requests"][1]["seq"]})
    assert since["count"] == 1


# ---------------------------------------------------------------------- running market


def test_background_market_steps_and_pauses() -> None:
    runner = SimThread(make_config(market_paused=False, step_ms=10))
    sim = runner.start()
    try:
        mids = set()
        deadline = time.monotonic() + 5
        while len(mids) < 3 and time.monotonic() < deadline:
            mids.add(sim.admin("GET", "/sim/state")["market"]["symbols"]["BTCUSDT"]["mid"])
            time.sleep(0.05)
        assert len(mids) >= 3
        sim.admin("POST", "/sim/market", json={"paused": True})
        time.sleep(0.05)
        a = sim.admin("GET", "/sim/state")["market"]["symbols"]["BTCUSDT"]["mid"]
        time.sleep(0.2)
        assert sim.admin("GET", "/sim/state")["market"]["symbols"]["BTCUSDT"]["mid"] == a
    finally:
        runner.stop()


# ---------------------------------------------------------------------- CLI / process


def _start_cli(*args: str) -> tuple[subprocess.Popen[str], int]:
    env = {**os.environ, "SIMEX_API_KEY": "env-key", "SIMEX_API_SECRET": "env-secret"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "venues.sim", "--port", "0", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on http://127.0.0.1:" in line, line + (
        proc.stderr.read() if proc.stderr else ""
    )
    port = int(line.split("http://127.0.0.1:")[1].split()[0])
    return proc, port


def test_cli_two_instances_start_fast_and_stop_on_signals() -> None:
    t0 = time.monotonic()
    a, port_a = _start_cli(
        "--name", "sim-a", "--seed", "1", "--mid", "BTC/USDT=60000,ETH/USDT=3000"
    )
    b, port_b = _start_cli(
        "--name",
        "sim-b",
        "--seed",
        "2",
        "--mid",
        "BTC/USDT=60100",
        "--depth-scale",
        "2",
        "--paused",
    )
    try:
        assert time.monotonic() - t0 < 10
        ha = requests.get(f"http://127.0.0.1:{port_a}/sim/health", timeout=5).json()
        hb = requests.get(f"http://127.0.0.1:{port_b}/sim/health", timeout=5).json()
        assert (ha["name"], hb["name"], hb["market_paused"]) == ("sim-a", "sim-b", True)
        ba = requests.get(
            f"http://127.0.0.1:{port_a}/api/v3/depth?symbol=BTCUSDT&limit=1", timeout=5
        ).json()
        bb = requests.get(
            f"http://127.0.0.1:{port_b}/api/v3/depth?symbol=BTCUSDT&limit=1", timeout=5
        ).json()
        assert float(bb["bids"][0][0]) > float(ba["bids"][0][0]) + 20
        # env credentials
        now = int(time.time() * 1000)
        q = f"timestamp={now}"
        sig = hmac.new(b"env-secret", q.encode(), hashlib.sha256).hexdigest()
        r = requests.get(
            f"http://127.0.0.1:{port_b}/api/v3/account?{q}&signature={sig}",
            headers={"X-MBX-APIKEY": "env-key"},
            timeout=5,
        )
        assert r.status_code == 200, r.text
    finally:
        a.send_signal(signal.SIGTERM)
        b.send_signal(signal.SIGINT)
        t1 = time.monotonic()
        assert a.wait(10) == 0
        assert b.wait(10) == 0
        assert time.monotonic() - t1 < 5
        for p in (a, b):
            assert p.stderr is not None
            err_out = p.stderr.read()
            assert "Traceback" not in err_out, err_out
            p.stdout.close() if p.stdout else None
            p.stderr.close()


def test_cli_shuts_down_with_a_request_in_flight() -> None:
    proc, port = _start_cli("--paused")
    try:
        requests.post(
            f"http://127.0.0.1:{port}/sim/faults",
            json={"timeout_rate": 1.0, "scope": "all", "timeout_ms": 30000},
            timeout=5,
        )
        import threading

        t = threading.Thread(
            target=lambda: pytest.raises(
                requests.RequestException,
                requests.get,
                f"http://127.0.0.1:{port}/api/v3/ping",
                timeout=20,
            ),
            daemon=True,
        )
        t.start()
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        t1 = time.monotonic()
        rc = proc.wait(10)
        assert time.monotonic() - t1 < 5
        assert rc == 0
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
