"""The simulator's side of its FIX port: starts the acceptor process
(``venues/sim/fixserver.py``), hands its messages to the desk (``venues/sim/fixdesk.py``)
in the simulator's event loop, and sends back the desk's reports.

The acceptor is restarted if it dies (its FileStore keeps the sequence numbers, so a
client's missed reports are resent on its next logon). Reports of changes the client
did not ask for (fills of resting orders, cancels over REST) are polled from the engine
every ``POLL_MS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from venues.sim.fixdesk import FixDesk, Message

log = logging.getLogger("venues.sim.fix")

POLL_MS = 20
RESTART_S = 1.0


@dataclass(frozen=True)
class FixPortConfig:
    """The FIX port of a simulator: our CompID, the clients' CompIDs, where the
    acceptor keeps its messages; Logon carries the account's API key as Username (553)
    and its secret as Password (554)."""

    port: int
    store_dir: Path
    host: str = "127.0.0.1"
    comp_id: str = "SIMEX"
    sessions: tuple[str, ...] = ("OMS",)
    account: str = "default"


class FixBridge:
    def __init__(self, desk: FixDesk, config: FixPortConfig, credentials: tuple[str, str]):
        self.desk = desk
        self.config = config
        self._credentials = credentials
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._process: asyncio.subprocess.Process | None = None
        self._stopping = False
        self.messages_in = 0
        self.reports_out = 0

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._supervise()),
            asyncio.create_task(self._poll_loop()),
        ]

    async def stop(self) -> None:
        self._stopping = True
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._process.terminate()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._process.wait(), 10)
            if self._process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def status(self) -> dict[str, Any]:
        return {
            "port": self.config.port,
            "comp_id": self.config.comp_id,
            "sessions": list(self.config.sessions),
            "acceptor_running": self._process is not None and self._process.returncode is None,
            "silent_orders": self.desk.silent_orders,
            "messages_in": self.messages_in,
            "reports_out": self.reports_out,
        }

    async def _supervise(self) -> None:
        while not self._stopping:
            ours, theirs = socket.socketpair()
            cfg = self.config
            argv = [
                sys.executable, "-m", "venues.sim.fixserver", "--host", cfg.host,
                "--port", str(cfg.port), "--store", str(cfg.store_dir),
                "--comp-id", cfg.comp_id, "--sessions", ",".join(cfg.sessions),
                "--bridge-fd", str(theirs.fileno()),
            ]  # fmt: skip
            self._process = await asyncio.create_subprocess_exec(*argv, pass_fds=[theirs.fileno()])
            theirs.close()
            reader, self._writer = await asyncio.open_connection(sock=ours)
            try:
                await self._read_loop(reader)
            finally:
                self._writer.close()
                self._writer = None
                with contextlib.suppress(ProcessLookupError):
                    self._process.terminate()
                await self._process.wait()
            if not self._stopping:
                log.warning("FIX acceptor exited (%s); restarting", self._process.returncode)
                await asyncio.sleep(RESTART_S)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        while True:
            raw = await reader.readline()
            if not raw:
                return
            try:
                request = json.loads(raw)
                await self._answer(request)
            except Exception:  # one bad line must not stop the port
                log.exception("FIX bridge: cannot handle %r", raw[:200])

    async def _answer(self, request: dict[str, Any]) -> None:
        if request.get("op") == "logon":
            key, secret = self._credentials
            ok = hmac.compare_digest(str(request.get("username")), key) and hmac.compare_digest(
                str(request.get("password")), secret
            )
            text = "" if ok else "Username (553) / Password (554): unknown API key or secret"
            await self._write({"id": request.get("id"), "ok": ok, "text": text})
        elif request.get("op") == "message":
            self.messages_in += 1
            await self._send(self.desk.poll())  # what changed meanwhile goes to every session
            reports = self.desk.handle(request["message"], poss_dup=bool(request.get("poss_dup")))
            await self._send(reports, session=request.get("session"))

    async def _send(self, messages: list[Message], session: str | None = None) -> None:
        if not messages:
            return
        self.reports_out += len(messages)
        out: dict[str, Any] = {"send": messages}
        if session:
            out["session"] = session
        await self._write(out)

    async def _write(self, obj: dict[str, Any]) -> None:
        if self._writer is None:
            return  # no acceptor (restarting): the next poll after it is back reports
        self._writer.write(json.dumps(obj).encode() + b"\n")
        await self._writer.drain()

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(POLL_MS / 1000)
            if self._writer is None:
                continue
            try:
                await self._send(self.desk.poll())
            except Exception:  # keep reporting whatever happens
                log.exception("FIX report poll failed")
