"""The simulator's Binance-compatible WebSocket streams: raw and combined endpoints,
subscription by message, sequencing a book builder can follow, ccxt.pro on top."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal as D
from typing import Any

import aiohttp
import pytest
import requests

from marketdata.book import Diff, L2Book, Outcome
from tests.venues.sim.conftest import API_KEY, API_SECRET, CCXT_OPTIONS, RunningSim

pytestmark = pytest.mark.timeout(60)


def move(sim: RunningSim, mid: str) -> None:
    sim.admin("POST", "/sim/market", json={"mid": {"BTC/USDT": mid}})


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = 3.0) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


def test_combined_stream_diffs_rebuild_the_rest_book(sim: RunningSim) -> None:
    async def run() -> L2Book:
        names = "btcusdt@depth@100ms/btcusdt@bookTicker"
        async with aiohttp.ClientSession() as session:
            url = f"ws://127.0.0.1:{sim.port}/stream?streams={names}"
            async with session.ws_connect(url) as ws:
                await asyncio.sleep(0.25)  # the hub has its baseline
                move(sim, "60100")
                first = await recv(ws)
                snap = requests.get(f"{sim.api}/depth", params={"symbol": "BTCUSDT"}).json()
                book = L2Book("BTCUSDT")
                book.apply_diff(diff(first))
                assert book.apply_snapshot(snap["bids"], snap["asks"], snap["lastUpdateId"]) in (
                    Outcome.APPLIED,
                )
                for mid in ("60200", "59900", "60050"):
                    move(sim, mid)
                    while True:
                        msg = await recv(ws)
                        if msg["stream"] == "btcusdt@depth@100ms":
                            assert book.apply_diff(diff(msg)) == Outcome.APPLIED, book.reason
                            break
                        assert msg["stream"] == "btcusdt@bookTicker"
                        assert set(msg["data"]) == {"u", "s", "b", "B", "a", "A"}
                return book

    book = asyncio.run(run())
    rest = requests.get(f"{sim.api}/depth", params={"symbol": "BTCUSDT", "limit": 5000}).json()
    bids, asks = book.top(5000)
    assert [[f"{p:.8f}", f"{q:.8f}"] for p, q in bids] == rest["bids"]
    assert [[f"{p:.8f}", f"{q:.8f}"] for p, q in asks] == rest["asks"]
    assert book.last_update_id == rest["lastUpdateId"]


def diff(msg: dict[str, Any]) -> Diff:
    data = msg.get("data", msg)
    assert data["e"] == "depthUpdate" and data["s"] == "BTCUSDT"
    return Diff(data["U"], data["u"], data["b"], data["a"])


def test_raw_stream_subscribe_by_message_and_trades(sim: RunningSim) -> None:
    async def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"ws://127.0.0.1:{sim.port}/ws/0") as ws:
                await ws.send_str(
                    json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 7})
                )
                ack = await recv(ws)
                await ws.send_str(json.dumps({"method": "SUBSCRIBE", "params": ["x@y"], "id": 8}))
                refused = await recv(ws)
                assert "unknown stream" in refused["error"]["msg"]
                await asyncio.sleep(0.25)
                ask = D(requests.get(f"{sim.api}/depth", params={"symbol": "BTCUSDT"}).json()[
                    "asks"][0][0])  # fmt: skip
                move(sim, str(ask + 50))  # the house buys through the resting asks' prices
                sim.admin(
                    "POST",
                    "/sim/orders",
                    json={
                        "symbol": "BTCUSDT",
                        "side": "SELL",
                        "type": "MARKET",
                        "quantity": "0.01",
                    },
                )
                trades = [await recv(ws)]
                return ack, trades

    ack, trades = asyncio.run(run())
    assert ack == {"result": None, "id": 7}
    trade = trades[0]
    assert trade["e"] == "trade" and trade["s"] == "BTCUSDT"
    assert {"t", "p", "q", "T", "m", "E"} <= set(trade)


def test_paused_stream_sends_nothing_and_resumes_with_a_gap(sim: RunningSim) -> None:
    async def run() -> tuple[Outcome, int]:
        async with aiohttp.ClientSession() as session:
            url = f"ws://127.0.0.1:{sim.port}/ws/btcusdt@depth@100ms"
            async with session.ws_connect(url) as ws:
                await asyncio.sleep(0.25)
                move(sim, "60100")
                first = await recv(ws)
                book = L2Book("BTCUSDT")
                book.apply_snapshot([], [], first["u"])
                sim.admin("POST", "/sim/streams", json={"paused": True})
                move(sim, "60200")
                with pytest.raises(TimeoutError):
                    await recv(ws, timeout=0.5)
                sim.admin("POST", "/sim/streams", json={"paused": False})
                move(sim, "60300")
                outcome = book.apply_diff(diff(await recv(ws)))
                sim.admin("POST", "/sim/streams", json={"disconnect": True})
                closed = await asyncio.wait_for(ws.receive(), 3)
                return outcome, closed.type

    outcome, closed = asyncio.run(run())
    assert outcome == Outcome.GAP
    assert closed in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


def test_ccxt_pro_binance_watches_the_simulator(sim: RunningSim) -> None:
    import ccxt.pro

    async def run() -> tuple[Any, Any]:
        ex = ccxt.pro.binance(
            {"apiKey": API_KEY, "secret": API_SECRET, "options": dict(CCXT_OPTIONS)}
        )
        ex.urls["api"] = {
            **ex.urls["api"],
            "public": sim.api,
            "private": sim.api,
            "ws": {**ex.urls["api"]["ws"], "spot": f"ws://127.0.0.1:{sim.port}/ws"},
        }
        try:
            move(sim, "60100")
            first = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
            first = {"nonce": first["nonce"], "bids": list(first["bids"])}
            move(sim, "60400")
            while True:
                book = await asyncio.wait_for(ex.watch_order_book("BTC/USDT"), 5)
                if book["nonce"] > first["nonce"]:
                    return first, book
        finally:
            await ex.close()

    first, book = asyncio.run(run())
    rest = requests.get(f"{sim.api}/depth", params={"symbol": "BTCUSDT"}).json()
    assert book["nonce"] == rest["lastUpdateId"]
    assert book["bids"][0][0] == float(rest["bids"][0][0])
    assert book["asks"][0][0] == float(rest["asks"][0][0])
