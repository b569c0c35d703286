"""``/ws/blotter/``: a snapshot on connect, then live events, batched.

Protocol (JSON text frames; ``docs/realtime.md`` has the payloads):

server -> client
  ``{"type": "snapshot", "seqs": {stream: n}, ...}``  the state to start from
  ``{"type": "events", "events": [event, ...]}``      live events, in seq order per stream
  ``{"type": "tick", "seqs": {...}, "marks", "quotes", "venues", "processes"}``  once a second
  ``{"type": "error", "code": ..., "message": ...}``  then a close (4401 unauthenticated,
                                                      4403 forbidden origin)
client -> server
  ``{"type": "snapshot"}``  send me a fresh snapshot (after a gap)
  ``{"type": "ping"}``      answered by ``{"type": "pong"}``

The consumer joins the group of every account the user may see (risk and admin see all)
and the global group. Frames are paced by a token bucket: up to ``BURST_FRAMES`` go out
at once (an order's few state changes arrive without delay), then at most one every
``FLUSH_INTERVAL``, each carrying everything gathered meanwhile, so under a burst the
browser gets at most ~50 frames a second and renders once per animation frame. (At one
frame per 50 ms, a desk trading 20 orders a second saw its fills up to 50 ms late.) A client so far behind that
``MAX_PENDING`` events pile up gets a fresh snapshot instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from blotter import auth, snapshot
from omsweb import realtime

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.02  # seconds per frame once the burst allowance is spent
BURST_FRAMES = 10
TICK_INTERVAL = 1.0
MAX_PENDING = 5000

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


def _redis() -> Any:
    from omsweb.redis_client import client

    return client()


_DEFAULT_PORTS = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


def _origin_allowed(scope: dict[str, Any]) -> bool:
    """A browser's session cookie rides along on any site's WebSocket: only our own
    pages may use it (token clients are not affected). Same origin: the Origin's host
    and port are the ones the browser connected to (the Host header), and the host is
    one we serve; another port on the same host is another origin."""
    headers = dict(scope.get("headers") or [])
    origin = headers.get(b"origin")
    if origin is None:
        return True  # not a browser
    from urllib.parse import urlsplit

    parts = urlsplit(origin.decode("latin1"))
    domain, port = split_domain_port(parts.netloc.lower())
    host, host_port = split_domain_port(headers.get(b"host", b"").decode("latin1").lower())
    default = _DEFAULT_PORTS.get(parts.scheme, "")
    same = (domain, port or default) == (host, host_port or default)
    return bool(domain) and same and validate_host(domain, settings.ALLOWED_HOSTS)


class BlotterConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        self.streams: set[str] = set()
        self.pending: list[dict[str, Any]] = []
        self.tokens = float(BURST_FRAMES)
        self.tokens_at = time.monotonic()
        self.flush_task: asyncio.Task | None = None
        self.tick_task: asyncio.Task | None = None
        self.send_lock = asyncio.Lock()
        self.paused = False
        self.venues: list[dict[str, Any]] = []
        self.symbols: list[str] = []
        self.user = self.scope.get("user")
        offered = self.scope.get("subprotocols") or ()
        await self.accept(subprotocol=auth.SUBPROTOCOL if auth.SUBPROTOCOL in offered else None)
        if self.user is None or not self.user.is_authenticated:
            await self._refuse(
                CLOSE_UNAUTHENTICATED,
                "unauthenticated",
                "log in, or send an API token as 'Authorization: Token <token>' or as the "
                f"subprotocol '{auth.TOKEN_SUBPROTOCOL_PREFIX}<token>' next to "
                f"'{auth.SUBPROTOCOL}' (a token in the URL is not accepted)",
            )
            return
        if self.scope.get("oms_auth") == "session" and not _origin_allowed(self.scope):
            await self._refuse(CLOSE_FORBIDDEN, "forbidden_origin", "origin not allowed")
            return
        await self._send_snapshot()
        self.tick_task = asyncio.create_task(self._tick_loop())

    async def _refuse(self, code: int, error: str, message: str) -> None:
        await self.send_json({"type": "error", "code": error, "message": message})
        await self.close(code=code)

    async def disconnect(self, code: int) -> None:
        for task in (getattr(self, "flush_task", None), getattr(self, "tick_task", None)):
            if task is not None:
                task.cancel()
        for stream in getattr(self, "streams", ()):
            await self.channel_layer.group_discard(realtime.group_for(stream), self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "snapshot":
            await self._send_snapshot()
        elif kind == "ping":
            await self._send({"type": "pong", "ts": time.time()})
        else:
            await self._send({"type": "error", "code": "bad_request", "message": "unknown type"})

    # --- snapshot ---------------------------------------------------------------------

    async def _send_snapshot(self) -> None:
        """Join the groups first, then read the state: anything published meanwhile is
        either in the snapshot or queued behind it with a higher sequence number."""
        self.paused = True
        try:
            account_ids = await database_sync_to_async(snapshot.visible_account_ids)(self.user)
            wanted = {realtime.stream_for(a) for a in account_ids} | {realtime.GLOBAL_STREAM}
            for stream in sorted(wanted - self.streams):
                await self.channel_layer.group_add(realtime.group_for(stream), self.channel_name)
            for stream in sorted(self.streams - wanted):
                await self.channel_layer.group_discard(
                    realtime.group_for(stream), self.channel_name
                )
            self.streams = wanted
            data, self.venues = await database_sync_to_async(_load_snapshot)(self.user, account_ids)
            self.symbols = [i["symbol"] for i in data["instruments"]]
            await self._send(data)
        finally:
            self.paused = False
        if self.pending:
            await self._flush()

    # --- live events ------------------------------------------------------------------

    async def oms_events(self, message: dict[str, Any]) -> None:
        """A batch from ``omsweb.realtime`` (group message type ``oms.events``)."""
        if message.get("stream") not in self.streams:
            return  # a group we are leaving
        self.pending.extend(message["events"])
        if len(self.pending) > MAX_PENDING:
            self.pending.clear()
            log.warning("blotter client %s too far behind: resending a snapshot", self.user)
            await self._send_snapshot()
            return
        if self.paused or self.flush_task is not None:
            return
        wait = self._frame_wait()
        if wait <= 0:
            await self._flush()
        else:
            self.flush_task = asyncio.create_task(self._flush_later(wait))

    def _frame_wait(self) -> float:
        """Seconds until a frame may be sent (token bucket: BURST_FRAMES, 1/FLUSH_INTERVAL)."""
        now = time.monotonic()
        self.tokens = min(BURST_FRAMES, self.tokens + (now - self.tokens_at) / FLUSH_INTERVAL)
        self.tokens_at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) * FLUSH_INTERVAL

    async def _flush_later(self, wait: float) -> None:
        await asyncio.sleep(wait)
        self.flush_task = None
        if not self.paused:
            await self._flush()

    async def _flush(self) -> None:
        if not self.pending:
            return
        events, self.pending = self.pending, []
        # Two worker processes may publish to one stream a hair out of order.
        events.sort(key=lambda e: (e["stream"], e["seq"]))
        self._frame_wait()  # refill, then take this frame's token
        self.tokens = max(0.0, self.tokens - 1)
        await self._send({"type": "events", "events": events})

    async def _send(self, data: dict[str, Any]) -> None:
        async with self.send_lock:
            await self.send_json(data)

    # --- once a second: counters, marks, venue state -----------------------------------

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            try:
                tick = await sync_to_async(_tick, thread_sensitive=False)(
                    sorted(self.streams), list(self.symbols), list(self.venues)
                )
            except Exception:  # Redis blip: try again next second
                log.warning("blotter tick failed", exc_info=True)
                continue
            try:
                await self._send(tick)
            except Exception:  # the socket is gone (the consumer may have died with it)
                return


def _load_snapshot(user: Any, account_ids: list[int]) -> tuple[dict[str, Any], list[dict]]:
    return snapshot.build(user, account_ids=account_ids, redis=_redis()), snapshot.venue_rows()


def _tick(streams: list[str], symbols: list[str], venues: list[dict[str, Any]]) -> dict[str, Any]:
    redis = _redis()
    return {
        "type": "tick",
        "ts": time.time(),
        "seqs": snapshot.read_seqs(redis, streams),
        "marks": snapshot.read_marks(redis, symbols),
        "quotes": snapshot.read_quotes(redis, venues, symbols),
        "venues": snapshot.venue_states(redis, venues, symbols),
        "processes": snapshot.process_states(),
    }
