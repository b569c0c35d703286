"""WebSocket benchmark for ``make bench`` (DESIGN section 10): venue fill to blotter.

``bench_ws(stack)`` runs against a started stack (``omsweb/stack.py``: web URL, simulator
URL, a trader's token, the processes' environment) with ``clients`` blotter clients
connected over real WebSockets:

* ``fill_to_ws_p50_ms`` / ``_p99_ms``: one crossing order at a time through the REST
  API; for each fill, the venue's trade time (``executed_at``, from the simulated
  exchange on the same machine) to the ``fill.created`` event arriving at a client;
  ``commit_to_ws_*`` is the part after the worker's commit (the event's own ``ts``);
* ``ws_events_per_s``: events per second each of the ``clients`` receives when events
  are pushed as fast as the publisher can (through ``omsweb.realtime``'s sender, the
  channel layer, the consumer's batching and the socket), with every client checked
  for receiving every event in sequence (``ws_lost_events`` must be 0);
  ``ws_deliveries_per_s`` counts every client's copy.

The calling process needs Django settings (for the channel layer's configuration); it
talks to the stack's Redis (``stack.env["REDIS_URL"]``), not to its own.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp

from bench.stats import pct

BENCH_EVENT = "bench.ping"  # a type the blotter page ignores (its seq still counts)


class Client:
    """One blotter WebSocket client that records when each event arrives."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session, self.url, self.token = session, url, token
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.snapshot: dict[str, Any] = {}
        self.fills: dict[str, tuple[float, dict[str, Any]]] = {}  # client order id ->
        self.fill_waiters: dict[str, asyncio.Future] = {}
        self.bench_seqs: list[int] = []
        self.stream_seqs: dict[str, list[int]] = {}  # every event's seq, while fanning out
        self.bench_done = asyncio.Event()
        self.bench_expected = 0
        self.task: asyncio.Task | None = None

    async def connect(self) -> None:
        self.ws = await self.session.ws_connect(
            self.url, headers={"Authorization": f"Token {self.token}"}, max_msg_size=0
        )
        first = await self.ws.receive_json(timeout=10)
        if first.get("type") != "snapshot":
            raise RuntimeError(f"blotter answered {first!r}, not a snapshot")
        self.snapshot = first
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        async for message in self.ws:
            arrived = time.time()
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if data.get("type") != "events":
                continue
            for event in data["events"]:
                if self.bench_expected:
                    self.stream_seqs.setdefault(event["stream"], []).append(event["seq"])
                if event["type"] == "fill.created":
                    coid = event["data"].get("client_order_id", "")
                    self.fills.setdefault(coid, (arrived, event))
                    waiter = self.fill_waiters.pop(coid, None)
                    if waiter is not None and not waiter.done():
                        waiter.set_result((arrived, event))
                elif event["type"] == BENCH_EVENT:
                    self.bench_seqs.append(event["seq"])
                    if len(self.bench_seqs) >= self.bench_expected > 0:
                        self.bench_done.set()

    def wait_fill(self, client_order_id: str) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        if client_order_id in self.fills:
            future.set_result(self.fills[client_order_id])
        else:
            self.fill_waiters[client_order_id] = future
        return future

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()


async def _book(session: aiohttp.ClientSession, sim: str) -> tuple[Decimal, Decimal]:
    async with session.get(f"{sim}/sim/state", params={"depth": "1"}) as r:
        book = (await r.json())["books"]["BTCUSDT"]
    return Decimal(book["bids"][0][0]), Decimal(book["asks"][0][0])


async def _fill_latencies(stack: Any, session: aiohttp.ClientSession, watcher: Client,
                          n_fills: int) -> tuple[list[float], list[float], list[str]]:  # fmt: skip
    headers = {"Authorization": f"Token {stack.token}"}
    venue_to_ws: list[float] = []
    commit_to_ws: list[float] = []
    failed: list[str] = []
    run = int(time.time())
    for i in range(n_fills):
        bid, ask = await _book(session, stack.sim)
        side = "buy" if i % 2 == 0 else "sell"  # pairs keep the position flat
        price = (ask * Decimal("1.02") if side == "buy" else bid * Decimal("0.98")).quantize(
            Decimal("0.01")
        )
        quantity = Decimal("0.001") + Decimal("0.00001") * ((i // 2) % 40)  # never a duplicate
        body = {
            "client_order_id": f"wsb-{run % 100000}-{i}",
            "account": "DEMO" if (i // 2) % 2 == 0 else "HEDGE",
            "symbol": "BTC/USDT",
            "venue": "sim-a",
            "side": side,
            "type": "limit",
            "time_in_force": "IOC",
            "quantity": str(quantity),
            "price": str(price),
        }
        waiter = watcher.wait_fill(body["client_order_id"])
        async with session.post(f"{stack.web}/api/v1/orders/", json=body, headers=headers) as r:
            if r.status != 201:
                failed.append(f"{body['client_order_id']}: HTTP {r.status} {await r.text()}")
                watcher.fill_waiters.pop(body["client_order_id"], None)
                continue
        try:
            arrived, event = await asyncio.wait_for(waiter, 10)
        except TimeoutError:
            failed.append(f"{body['client_order_id']}: no fill event within 10 s")
            continue
        executed = event["data"].get("executed_at")
        if executed:
            venue_to_ws.append((arrived - datetime.fromisoformat(executed).timestamp()) * 1e3)
        commit_to_ws.append((arrived - event["ts"]) * 1e3)
    return venue_to_ws, commit_to_ws, failed


async def _fan_out(stack: Any, clients: list[Client], n_events: int) -> tuple[float, int]:
    """Push ``n_events`` as fast as possible; seconds until every client has them all,
    and how many events went missing or out of order across all clients."""
    from channels_redis.core import RedisChannelLayer
    from django.conf import settings

    from omsweb.realtime import Sender

    config = dict(settings.CHANNEL_LAYERS["default"]["CONFIG"])
    host = config["hosts"][0]
    config["hosts"] = [
        {**(host if isinstance(host, dict) else {}), "address": stack.env["REDIS_URL"]}
    ]
    sender = Sender(redis_url=stack.env["REDIS_URL"], layer=RedisChannelLayer(**config))
    account_id = clients[0].snapshot["accounts"][0]["id"]
    for client in clients:
        client.bench_seqs.clear()
        client.stream_seqs.clear()
        client.bench_done.clear()
        client.bench_expected = n_events
    started = time.perf_counter()

    def pump() -> None:
        for i in range(n_events):
            sender.publish(BENCH_EVENT, account_id=account_id, data={"i": i})
            if i % 4 == 3:
                time.sleep(0)  # a fill's worth of events, then let others run

    await asyncio.to_thread(pump)
    try:
        await asyncio.wait_for(
            asyncio.gather(*(c.bench_done.wait() for c in clients)), timeout=30 + n_events / 500
        )
    except TimeoutError:
        pass
    elapsed = time.perf_counter() - started
    await asyncio.to_thread(sender.close)
    lost = 0
    for client in clients:
        client.bench_expected = 0
        lost += max(0, n_events - len(client.bench_seqs))
        for seqs in client.stream_seqs.values():  # a hole in any stream is a lost event
            lost += sum(b - a - 1 for a, b in zip(seqs, seqs[1:], strict=False) if b > a + 1)
    return elapsed, lost


async def _bench(stack: Any, n_fills: int, clients: int, n_events: int) -> dict[str, Any]:
    url = stack.web.replace("http://", "ws://").replace("https://", "wss://") + "/ws/blotter/"
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        conns = [Client(session, url, stack.token) for _ in range(clients)]
        await asyncio.gather(*(c.connect() for c in conns))
        try:
            venue_to_ws, commit_to_ws, failed = await _fill_latencies(
                stack, session, conns[0], n_fills
            )
            elapsed, lost = await _fan_out(stack, conns, n_events)
        finally:
            await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    return {
        "fill_to_ws_p50_ms": round(pct(venue_to_ws, 0.5), 2),
        "fill_to_ws_p99_ms": round(pct(venue_to_ws, 0.99), 2),
        "fill_to_ws_n": len(venue_to_ws),
        "fill_to_ws_failed_orders": len(failed),
        "fill_to_ws_first_failure": failed[0][:300] if failed else "",
        "commit_to_ws_p50_ms": round(pct(commit_to_ws, 0.5), 2),
        "commit_to_ws_p99_ms": round(pct(commit_to_ws, 0.99), 2),
        "ws_events_per_s": round(n_events / elapsed, 1),
        "ws_deliveries_per_s": round(n_events * clients / elapsed, 1),
        "ws_clients": clients,
        "ws_events": n_events,
        "ws_lost_events": lost,
    }


def bench_ws(stack: Any, n_fills: int = 200, clients: int = 20, n_events: int = 4000) -> dict:
    """Fill-to-WebSocket latency and fan-out throughput against a running ``stack``."""
    return asyncio.run(_bench(stack, n_fills, clients, n_events))
