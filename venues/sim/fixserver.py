"""The simulated exchange's FIX 4.4 port: a QuickFIX acceptor in a process of its own.

``python -m venues.sim.fixserver --port P --store DIR --comp-id SIMEX --sessions OMS
--bridge-fd N`` is started by the simulator (``oms simex --fix-port P``), never by hand:
QuickFIX runs its callbacks on threads of its own, and an acceptor stopped in a process
that runs other things has crashed it, so it gets a process to itself. The matching
engine stays in the simulator's process; the two talk over a socket pair (fd N), one
JSON object a line:

* to the simulator: ``{"id", "op": "logon", "session", "username", "password"}`` (the
  answer ``{"id", "ok", "text"}`` decides the Logon) and ``{"op": "message", "session",
  "message": {"type", "fields"}}`` for each application message;
* from the simulator: ``{"session"?, "send": [message, ...]}``: messages to send, to
  ``session`` (the CompID of the client that asked) or, without it, to every session
  (reports of changes the client did not ask for). Sent in the order they arrive, by
  one thread, so a session's reports keep the engine's order.

The simulator going away (end of file on the socket) stops this process.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import quickfix as fix

from fixgw.engine import (
    GIL_SWITCH_S,
    Acceptor,
    AcceptorConfig,
    SessionKey,
    body_of,
    header_field,
    serve,
    to_message,
)
from venues.sim.fixdesk import HANDLED

USERNAME, PASSWORD = 553, 554


class Bridge:
    """This end of the socket pair: calls that wait for an answer, posts that do not,
    and the reader that sends what the simulator says to send."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rwb")
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._answers: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}

    def post(self, obj: dict[str, Any]) -> None:
        line = json.dumps(obj).encode() + b"\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def call(self, obj: dict[str, Any], timeout: float = 5.0) -> dict[str, Any] | None:
        call_id = next(self._ids)
        done: tuple[threading.Event, list[dict[str, Any]]] = (threading.Event(), [])
        self._answers[call_id] = done
        try:
            self.post({**obj, "id": call_id})
            return done[1][0] if done[0].wait(timeout) else None
        finally:
            self._answers.pop(call_id, None)

    def run(self, sessions: tuple[SessionKey, ...], stop: threading.Event) -> None:
        by_client = {key.target_comp_id: key for key in sessions}
        try:
            for raw in self._file:
                obj = json.loads(raw)
                waiting = self._answers.get(obj.get("id", 0))
                if waiting is not None:
                    waiting[1].append(obj)
                    waiting[0].set()
                targets = [by_client[obj["session"]]] if obj.get("session") else sessions
                for message in obj.get("send", ()):
                    for key in targets:
                        send_to(key, message)
        finally:
            stop.set()  # the simulator is gone


def send_to(key: SessionKey, message: dict[str, Any]) -> None:
    fix.Session.sendToTarget(
        to_message(message["type"], message["fields"]),
        fix.SessionID("FIX.4.4", key.sender_comp_id, key.target_comp_id),
    )


class SimFixApplication(fix.Application):  # type: ignore[misc]
    def __init__(self, bridge: Bridge) -> None:
        super().__init__()
        self.bridge = bridge

    def onCreate(self, session_id: fix.SessionID) -> None:
        pass

    def onLogon(self, session_id: fix.SessionID) -> None:
        pass

    def onLogout(self, session_id: fix.SessionID) -> None:
        pass

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if header_field(message, 35) != fix.MsgType_Logon:
            return
        fields = body_of(message)
        answer = self.bridge.call(
            {
                "op": "logon",
                "session": session_id.getTargetCompID().getValue(),
                "username": fields.get(str(USERNAME), ""),
                "password": fields.get(str(PASSWORD), ""),
            }
        )
        if answer is None:
            raise fix.RejectLogon("the exchange is not answering: try again")
        if not answer.get("ok"):
            raise fix.RejectLogon(str(answer.get("text") or "logon refused"))

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        kind = header_field(message, 35) or ""
        if kind not in HANDLED:
            raise fix.UnsupportedMessageType()
        self.bridge.post(
            {
                "op": "message",
                "session": session_id.getTargetCompID().getValue(),
                "message": {"type": kind, "fields": body_of(message)},
                "poss_dup": header_field(message, 43) == "Y",
            }
        )


def _exit_when_set(stop: threading.Event) -> None:
    """The simulator went away: stop the acceptor the way SIGTERM does."""
    stop.wait()
    os.kill(os.getpid(), signal.SIGTERM)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m venues.sim.fixserver")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True)
    parser.add_argument("--comp-id", default="SIMEX")
    parser.add_argument("--sessions", default="OMS", help="client CompIDs, comma-separated")
    parser.add_argument("--bridge-fd", type=int, required=True)
    args = parser.parse_args(argv)
    sys.setswitchinterval(GIL_SWITCH_S)
    sessions = tuple(
        SessionKey(args.comp_id, client) for client in args.sessions.split(",") if client
    )
    bridge = Bridge(socket.socket(fileno=args.bridge_fd))
    config = AcceptorConfig(
        port=args.port, host=args.host, store_dir=args.store / "store",
        log_dir=args.store / "log", sessions=sessions, nodelay=True,
    )  # fmt: skip
    acceptor = Acceptor(SimFixApplication(bridge), config)
    stop = threading.Event()
    reader = threading.Thread(target=bridge.run, args=(sessions, stop), daemon=True)
    reader.start()
    threading.Thread(target=_exit_when_set, args=(stop,), daemon=True).start()
    serve(acceptor, ready=(f"simex FIX 4.4 acceptor on {args.host}:{args.port}",))


if __name__ == "__main__":
    main()
