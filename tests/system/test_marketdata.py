"""Market data through the whole stack: a simulated venue's stream stops, then the venue
goes away; the state follows (STALE within 3 s, DOWN), the blotter shows it, risk denies
a market order naming the venue and the state, and the book comes back LIVE by itself."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
import websockets

from tests.system.conftest import wait_for

pytestmark = [
    pytest.mark.system,
    pytest.mark.django_db(transaction=False),
    pytest.mark.timeout(180),
]


def market_order(api, symbol: str = "BTC/USDT") -> Any:
    body = {"client_order_id": f"md-{uuid.uuid4().hex[:12]}", "account": "DEMO",
            "symbol": symbol, "side": "buy", "type": "market", "quantity": "0.001",
            "venue": "sim-a"}  # fmt: skip
    return api.post("/api/v1/orders/", body)


def blotter_state(stack, venue: str, symbol: str, want: str, timeout: float = 10.0) -> str:
    """Read the blotter's WebSocket (as a browser would) until the venue panel shows
    ``venue``/``symbol`` in state ``want``; returns the state seen."""
    url = stack.web.replace("http", "ws", 1) + "/ws/blotter/"
    headers = {"Authorization": f"Token {stack.token}"}

    async def watch() -> str:
        async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
            deadline = time.monotonic() + timeout
            seen = ""
            while time.monotonic() < deadline:
                msg = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
                for row in msg.get("venues") or []:
                    if row.get("venue") != venue:
                        continue
                    for md in row.get("market_data") or []:
                        if md["symbol"] == symbol:
                            seen = md["state"]
                            if seen == want:
                                return seen
            return seen

    return asyncio.run(watch())


def test_stream_stops_then_stale_then_venue_lost_then_down_and_back_to_live(stack):
    api = stack.api()
    assert stack.market_data_state() == "LIVE"
    stack.sim_post("/sim/market", {"paused": False})  # the book moves: diffs every 100 ms
    try:
        # Stream stops (connection open, nothing sent): STALE within 3 s
        stack.sim_post("/sim/streams", {"paused": True})
        t0 = time.monotonic()
        wait_for(lambda: stack.market_data_state() == "STALE", timeout=3, interval=0.05)
        stale_after = time.monotonic() - t0
        assert stale_after <= 3.0
        r = market_order(api)
        assert r.status_code == 422, r.text
        reasons = r.json()["error"]["reasons"]
        assert [x["check"] for x in reasons] == ["REFERENCE_PRICE"]
        assert "sim-a BTC/USDT market data is STALE" in reasons[0]["message"]
        assert blotter_state(stack, "sim-a", "BTC/USDT", "STALE") == "STALE"
        # Stream resumes: a gap, a fresh snapshot, LIVE by itself
        stack.sim_post("/sim/streams", {"paused": False})
        wait_for(lambda: stack.market_data_state() == "LIVE", timeout=10, interval=0.1)

        # The venue goes away: DOWN
        stack.procs["sim-a"].stop()
        wait_for(lambda: stack.market_data_state() == "DOWN", timeout=5, interval=0.1)
        assert blotter_state(stack, "sim-a", "BTC/USDT", "DOWN") == "DOWN"
        r = market_order(api)
        assert r.status_code == 422
        assert "sim-a BTC/USDT market data is DOWN" in r.json()["error"]["reasons"][0]["message"]
        # It comes back (paused market, as the stack runs it): RESYNCING, then LIVE
        stack.start("sim-a", stack.sim_argv)
        wait_for(lambda: stack.market_data_state() == "LIVE", timeout=30, interval=0.2)
        for symbol in ("BTC/USDT", "ETH/USDT"):
            wait_for(lambda s=symbol: stack.market_data_state("sim-a", s) == "LIVE", timeout=30)
        assert market_order(api).status_code == 201
    finally:
        if not stack.procs["sim-a"].alive():
            stack.start("sim-a", stack.sim_argv)
            wait_for(lambda: stack.market_data_state() == "LIVE", timeout=30)
        else:
            stack.sim_post("/sim/streams", {"paused": False})
            stack.sim_post("/sim/market", {"paused": True})
    log = (stack.logdir / "marketdata.log").read_text()
    assert "sim-a BTC/USDT market data LIVE -> STALE" in log
    assert "market data DOWN -> RESYNCING" in log and "RESYNCING -> LIVE" in log
