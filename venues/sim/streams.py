"""Binance-compatible market-data WebSocket streams for the simulated exchange.

Streams per symbol (lower-case exchange id, as Binance names them):

* ``<symbol>@depth@100ms`` (and ``<symbol>@depth``): diffs ``{"e": "depthUpdate", "E",
  "s", "U", "u", "b", "a"}``, sequenced against ``GET /api/v3/depth``'s
  ``lastUpdateId`` exactly as Binance's are (``U`` = previous ``u`` + 1);
* ``<symbol>@trade``: ``{"e": "trade", "E", "s", "t", "p", "q", "T", "m", "M"}``;
* ``<symbol>@bookTicker``: ``{"u", "s", "b", "B", "a", "A"}``.

Endpoints, as on Binance: ``/ws/<stream>`` (raw payloads), ``/stream?streams=a/b``
(combined: ``{"stream": name, "data": payload}``), and on either the live
``{"method": "SUBSCRIBE" | "UNSUBSCRIBE" | "LIST_SUBSCRIPTIONS", "params": [...], "id"}``
requests, answered ``{"result": null, "id": id}``. ccxt.pro's ``binance`` class connects
to ``<ws base>/<n>`` and subscribes by message, so pointing its ``urls["api"]["ws"]``
at ``ws://host:port/ws`` is all it needs.

Every 100 ms (Binance's ``@100ms``) the hub compares each watched book with what it last
published and sends the changed levels. Admin control (``POST /sim/streams``):
``{"paused": true}`` stops sending while the book keeps moving (connections stay open;
on resume subscribers see a gap, as after a real stall), ``{"disconnect": true}`` drops
every connection. A reset of the simulator drops them too (update ids start again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger("venues.sim.streams")

PUBLISH_MS = 100
KINDS = ("depth", "trade", "bookTicker")


def _d(value: Decimal) -> str:
    return f"{value:.8f}"


def parse_stream(name: str) -> tuple[str, str] | None:
    """``btcusdt@depth@100ms`` -> (``BTCUSDT``, ``depth``); None if not a stream name."""
    parts = name.split("@")
    if len(parts) < 2:
        return None
    symbol, kind = parts[0].upper(), parts[1]
    if kind == "depth" and parts[2:] in ([], ["100ms"], ["1000ms"]):
        return symbol, kind
    if kind in ("trade", "bookTicker") and len(parts) == 2:
        return symbol, kind
    return None


@dataclass
class Subscriber:
    ws: web.WebSocketResponse
    combined: bool
    streams: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (sym, kind)


@dataclass
class _Published:
    update_id: int
    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]
    top: tuple[Any, ...] | None
    trade_id: int


class StreamHub:
    """Subscribers of one simulator and the loop that publishes to them."""

    def __init__(self, sim: Any) -> None:
        self.sim = sim  # venues.sim.server.SimExchange (its engine changes on reset)
        self.subscribers: list[Subscriber] = []
        self.paused = False
        self.published: dict[str, _Published] = {}
        self._engine: Any = sim.engine
        self._task: asyncio.Task[None] | None = None
        self.messages_sent = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.disconnect_all()

    async def disconnect_all(self) -> None:
        subs, self.subscribers = self.subscribers, []
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.ws.close(code=1001, message=b"venue going away")

    def on_reset(self) -> None:
        """The simulator was reset: update ids start again, so do the subscribers."""
        subs, self.subscribers = self.subscribers, []
        self._engine, self.published = self.sim.engine, {}
        for sub in subs:
            asyncio.get_running_loop().create_task(sub.ws.close(code=1001, message=b"reset"))

    def control(self, body: dict[str, Any]) -> dict[str, Any]:
        if "paused" in body:
            self.paused = bool(body["paused"])
        if body.get("disconnect"):
            asyncio.get_running_loop().create_task(self.disconnect_all())
        return self.status()

    def status(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "connections": len(self.subscribers),
            "messages_sent": self.messages_sent,
        }

    # ------------------------------------------------------------------ endpoints

    async def handle_raw(self, request: web.Request) -> web.WebSocketResponse:
        """``/ws`` and ``/ws/<stream>``: raw payloads."""
        names = [n for n in request.match_info.get("streams", "").split("/") if n]
        return await self._serve(request, names, combined=False)

    async def handle_combined(self, request: web.Request) -> web.WebSocketResponse:
        """``/stream?streams=a/b``: payloads wrapped as ``{"stream", "data"}``."""
        names = [n for n in request.query.get("streams", "").split("/") if n]
        return await self._serve(request, names, combined=True)

    async def _serve(
        self, request: web.Request, names: list[str], combined: bool
    ) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0)
        await ws.prepare(request)
        sub = Subscriber(ws, combined)
        self._subscribe(sub, names)  # "/ws/0" as ccxt.pro opens it subscribes to nothing
        self.subscribers.append(sub)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                reply = self._request(sub, msg.data)
                await ws.send_str(json.dumps(reply))
        finally:
            with contextlib.suppress(ValueError):
                self.subscribers.remove(sub)
        return ws

    def _request(self, sub: Subscriber, raw: str) -> dict[str, Any]:
        try:
            req = json.loads(raw)
            method, params, rid = req.get("method"), req.get("params") or [], req.get("id")
        except (ValueError, AttributeError):
            return {"error": {"code": 3, "msg": "Invalid JSON"}}
        if method == "SUBSCRIBE":
            bad = [p for p in params if parse_stream(str(p)) is None]
            if bad:
                return {"error": {"code": 2, "msg": f"Invalid request: unknown stream {bad[0]}"}}
            self._subscribe(sub, [str(p) for p in params])
            return {"result": None, "id": rid}
        if method == "UNSUBSCRIBE":
            for p in params:
                sub.streams.pop(str(p), None)
            return {"result": None, "id": rid}
        if method == "LIST_SUBSCRIPTIONS":
            return {"result": sorted(sub.streams), "id": rid}
        return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"}, "id": rid}

    def _subscribe(self, sub: Subscriber, names: list[str]) -> None:
        for name in names:
            parsed = parse_stream(name)
            if parsed is not None and parsed[0] in self.sim.engine.instruments:
                sub.streams[name] = parsed
                if parsed[0] not in self.published:
                    # diffs start now, as Binance's do: a snapshot taken after the
                    # subscription is never older than the first diff's start
                    self.published[parsed[0]] = self._state_of(self.sim.engine, parsed[0])

    # ------------------------------------------------------------------ publishing

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(PUBLISH_MS / 1000)
            try:
                await self.publish()
            except Exception:  # keep publishing whatever happens
                log.exception("stream publish failed")

    async def publish(self) -> None:
        engine = self.sim.engine
        if engine is not self._engine:  # first run (a reset calls on_reset at once)
            self._engine, self.published = engine, {}
        wanted = {sym for sub in self.subscribers for sym, _kind in sub.streams.values()}
        if not wanted:
            self.published = {}
            return
        now = self.sim.clock()
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for symbol in sorted(wanted):
            out.update(self._changes(engine, symbol, now))
        if self.paused or not out:
            return
        for sub in list(self.subscribers):
            texts = [
                json.dumps({"stream": name, "data": payload} if sub.combined else payload)
                # a copy: a SUBSCRIBE may arrive while this loop awaits a send
                for name, (symbol, kind) in list(sub.streams.items())
                for payload in out.get((symbol, kind), ())
            ]
            try:
                for text in texts:
                    await sub.ws.send_str(text)
                    self.messages_sent += 1
            except ConnectionError:  # gone: its reader loop removes it
                continue

    @staticmethod
    def _state_of(engine: Any, symbol: str) -> _Published:
        return _state_of_engine(engine, symbol)

    def _changes(
        self, engine: Any, symbol: str, now: int
    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
        last = self.published.get(symbol)
        current = self.published[symbol] = self._state_of(engine, symbol)
        if last is None:  # first look: the baseline diffs start from
            return {}
        book = engine.books[symbol]
        bid_map, ask_map, top = current.bids, current.asks, current.top
        trades = engine.recent_trades(symbol, 1000)
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        if book.update_id != last.update_id:
            out[(symbol, "depth")] = [
                {
                    "e": "depthUpdate",
                    "E": now,
                    "s": symbol,
                    "U": last.update_id + 1,
                    "u": book.update_id,
                    "b": _level_changes(last.bids, bid_map),
                    "a": _level_changes(last.asks, ask_map),
                }
            ]
        if top != last.top and top[0] is not None and top[1] is not None:
            out[(symbol, "bookTicker")] = [
                {
                    "u": book.update_id,
                    "s": symbol,
                    "b": _d(top[0][0]),
                    "B": _d(top[0][1]),
                    "a": _d(top[1][0]),
                    "A": _d(top[1][1]),
                }
            ]
        fresh = [t for t in trades if t.id > last.trade_id]
        if fresh:
            out[(symbol, "trade")] = [
                {
                    "e": "trade",
                    "E": now,
                    "s": symbol,
                    "t": t.id,
                    "p": _d(t.price),
                    "q": _d(t.qty),
                    "T": t.time,
                    "m": t.is_buyer_maker,
                    "M": True,
                }
                for t in fresh
            ]
        return out


def _state_of_engine(engine: Any, symbol: str) -> _Published:
    bids, asks = engine.depth(symbol, 5000)
    trades = engine.recent_trades(symbol, 1)
    return _Published(
        engine.books[symbol].update_id,
        dict(bids),
        dict(asks),
        (bids[0] if bids else None, asks[0] if asks else None),
        trades[-1].id if trades else 0,
    )


def _level_changes(
    before: dict[Decimal, Decimal], after: dict[Decimal, Decimal]
) -> list[list[str]]:
    changes = [[_d(p), _d(q)] for p, q in after.items() if before.get(p) != q]
    changes += [[_d(p), "0.00000000"] for p in before if p not in after]
    return changes
