"""``oms fixvenue --venue NAME``: the FIX 4.4 session of one ``fix`` venue.

A QuickFIX initiator (``fixgw/engine.py``) in a process of its own: it logs on to the
venue (Username 553 / Password 554 from the venue's own credential variables, when the
row names them), keeps the session up (reconnecting, with sequence numbers kept in its
FileStore so that nothing the venue sent while we were away is lost: the venue resends
it on logon), and serves the FIX adapter's requests that arrive over Redis
(``venues/fix_adapter.py`` describes the keys and the mapping):

* ``submit``: NewOrderSingle then OrderStatusRequest; done on the status answer or an
  ExecutionReport Rejected;
* ``amend``: OrderCancelReplaceRequest then OrderStatusRequest for the new ClOrdID;
  done on the status answer or an OrderCancelReject;
* ``cancel``: OrderCancelRequest; done on Canceled or OrderCancelReject;
* ``status``: OrderStatusRequest; done on the answer echoing OrdStatusReqID (790);
* ``mass``: OrderMassStatusRequest; done on the report with LastRptRequested (912=Y).

A request past its deadline (the adapter stopped waiting) is dropped unsent; a request
while the session is not logged on is answered ``not_logged_on`` at once, so an order is
never queued in the FileStore to reach the venue later. Every fill report (150=F) is
recorded in Redis before any request it belongs to is answered.

Django-free; the CLI (``omsweb/cli.py``) reads the venue row and starts it.
"""

from __future__ import annotations

import json
import logging
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import quickfix as fix

from fixgw.engine import (
    GIL_SWITCH_S,
    Initiator,
    InitiatorConfig,
    SessionKey,
    body_of,
    header_field,
    to_message,
)
from venues.fix_adapter import FILLS_TTL_S, SESSION_TTL_S, Keys, fix_time, trade_record

log = logging.getLogger("oms.fixvenue")

USERNAME, PASSWORD = 553, 554


@dataclass(frozen=True)
class SessionConfig:
    venue: str
    host: str
    port: int
    sender_comp_id: str
    target_comp_id: str
    store_dir: Path
    username: str | None = None
    password: str | None = None
    heartbeat_s: int = 10


@dataclass
class Pending:
    """One request waiting for the venue's answers."""

    request_id: str
    op: str
    keys: list[tuple[str, str]]
    messages: list[dict[str, Any]] = field(default_factory=list)
    deadline: float = 0.0  # time.time(): past it (and a grace) nobody waits any more


class VenueSession(fix.Application):  # type: ignore[misc]
    def __init__(self, config: SessionConfig, redis: Any) -> None:
        super().__init__()
        self.config = config
        self.redis = redis
        self.keys = Keys(config.venue)
        self.session_id = fix.SessionID("FIX.4.4", config.sender_comp_id, config.target_comp_id)
        self.logged_on = threading.Event()
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], Pending] = {}

    # ------------------------------------------------------------------ QuickFIX callbacks

    def onCreate(self, session_id: fix.SessionID) -> None:
        pass

    def onLogon(self, session_id: fix.SessionID) -> None:
        log.info("%s: logged on", self.config.venue)
        self.logged_on.set()
        self._publish_session()

    def onLogout(self, session_id: fix.SessionID) -> None:
        log.warning("%s: logged out", self.config.venue)
        self.logged_on.clear()
        self.redis.delete(self.keys.session)

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if header_field(message, 35) == fix.MsgType_Logon:
            if self.config.username:
                message.setField(fix.StringField(USERNAME, self.config.username))
            if self.config.password:
                message.setField(fix.StringField(PASSWORD, self.config.password))

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if header_field(message, 35) == fix.MsgType_Logout:
            text = body_of(message).get("58")
            if text:
                log.warning("%s: venue logs us out: %s", self.config.venue, text)

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        self.on_message(header_field(message, 35) or "", body_of(message))

    # ------------------------------------------------------------------ answers

    def on_message(self, kind: str, fields: dict[str, str]) -> None:
        """One application message from the venue (QuickFIX's thread)."""
        if kind == "8" and fields.get("150") == "F":
            self._record_fill(fields)
        pending, done = self._match(kind, fields)
        if pending is None:
            return
        pending.messages.append({"type": kind, "fields": fields})
        if done:
            self._answer(pending, {"ok": True, "messages": pending.messages})

    def _match(self, kind: str, fields: dict[str, str]) -> tuple[Pending | None, bool]:
        with self._lock:
            if kind == "8" and "584" in fields:
                pending = self._pending.get(("mass", fields["584"]))
                last = fields.get("912") == "Y" or fields.get("911") == "0"
                return pending, last
            if kind == "8" and "790" in fields:
                return self._pending.get(("status", fields["790"])), True
            if kind == "j":
                ref = fields.get("379", "")
                pending = self._pending.get(("cl", ref)) or self._pending.get(("mass", ref))
                return pending, True
            pending = self._pending.get(("cl", fields.get("11", "")))
            if pending is None:
                return None, False
            if kind == "9":
                return pending, True
            exec_type = fields.get("150")
            if pending.op == "cancel":
                return pending, exec_type == "4"
            return pending, exec_type == "8"  # submit refused: no status answer needed

    def _answer(self, pending: Pending, reply: dict[str, Any]) -> None:
        with self._lock:
            for key in pending.keys:
                self._pending.pop(key, None)
        key = self.keys.reply(pending.request_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.lpush(key, json.dumps(reply))
        pipe.expire(key, 60)
        pipe.execute()

    def _record_fill(self, fields: dict[str, str]) -> None:
        record = trade_record(fields)
        text = json.dumps(record, sort_keys=True)
        fills = self.keys.fills(record["order_id"])
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.keys.trades(record["symbol"]), {text: record["ts"]})
        pipe.hset(fills, record["trade_id"], text)
        pipe.expire(fills, FILLS_TTL_S)
        pipe.execute()

    def _publish_session(self) -> None:
        self.redis.set(self.keys.session, "up", ex=SESSION_TTL_S)

    # ------------------------------------------------------------------ requests

    def handle(self, request: dict[str, Any]) -> None:
        """One request from the adapter (the request thread)."""
        request_id, op = str(request["id"]), str(request.get("op"))
        fields = dict((request.get("args") or {}).get("fields") or {})
        deadline = float(request.get("deadline") or 0)
        if time.time() > deadline:
            log.warning("%s: %s request %s expired before it was sent", self.config.venue, op,
                        request_id)  # fmt: skip
            return
        if not self.logged_on.is_set():
            reply = {"ok": False, "error": "not_logged_on", "text": "FIX session not logged on"}
            self._answer(Pending(request_id, op, []), reply)
            return
        now = fix_time()
        if op in ("submit", "amend"):
            req = secrets.token_hex(6)
            keys = [("cl", fields["11"]), ("status", req)]
            pending = Pending(request_id, op, keys, deadline=deadline)
            fields.setdefault("60", now)
            status = {"11": fields["11"], "55": fields["55"], "54": fields["54"], "790": req}
            outgoing = [("D" if op == "submit" else "G", fields), ("H", status)]
        elif op == "cancel":
            pending = Pending(request_id, op, [("cl", fields["11"])], deadline=deadline)
            fields.setdefault("60", now)
            outgoing = [("F", fields)]
        elif op == "status":
            req = secrets.token_hex(6)
            pending = Pending(request_id, op, [("status", req)], deadline=deadline)
            outgoing = [("H", {**fields, "790": req})]
        elif op == "mass":
            req = secrets.token_hex(6)
            pending = Pending(request_id, op, [("mass", req)], deadline=deadline)
            outgoing = [("AF", {**fields, "584": req})]
        else:
            self._answer(Pending(request_id, op, []), {"ok": False, "error": f"unknown op {op}"})
            return
        with self._lock:
            for key in pending.keys:
                self._pending[key] = pending
        for kind, body in outgoing:
            if not fix.Session.sendToTarget(to_message(kind, body), self.session_id):
                self._answer(pending, {"ok": False, "error": "not_logged_on", "text": "no session"})
                return

    def forget_unanswered(self, grace_s: float = 60.0) -> int:
        """Drop requests the venue never answered (their adapter gave up long ago), so
        a later report for the same ClOrdID is not taken for their answer."""
        cutoff = time.time() - grace_s
        with self._lock:
            stale = [k for k, p in self._pending.items() if p.deadline < cutoff]
            for key in stale:
                del self._pending[key]
        return len(stale)

    def serve_requests(self, stop: threading.Event) -> None:
        """Take the adapter's requests until ``stop``; refresh the session key."""
        next_beat = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_beat and self.logged_on.is_set():
                self._publish_session()
                self.forget_unanswered()
                next_beat = now + 1.0
            try:
                item = self.redis.brpop([self.keys.requests], timeout=1)
            except Exception:  # Redis away: try again shortly
                log.exception("%s: cannot read requests", self.config.venue)
                stop.wait(1.0)
                continue
            if item is None:
                continue
            try:
                self.handle(json.loads(item[1]))
            except Exception:  # one bad request must not stop the session
                log.exception("%s: bad request %r", self.config.venue, item[1][:200])


def run(config: SessionConfig, redis: Any) -> None:
    """Run the session until SIGTERM/SIGINT."""
    sys.setswitchinterval(GIL_SWITCH_S)
    application = VenueSession(config, redis)
    initiator = Initiator(
        application,
        InitiatorConfig(
            host=config.host, port=config.port, store_dir=config.store_dir / "store",
            log_dir=config.store_dir / "log", heartbeat_s=config.heartbeat_s,
            session=SessionKey(config.sender_comp_id, config.target_comp_id),
        ),
    )  # fmt: skip
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    redis.delete(application.keys.session)
    initiator.start()
    print(
        f"fixvenue {config.venue}: {config.sender_comp_id}->{config.target_comp_id} at "
        f"{config.host}:{config.port}; ready",
        flush=True,
    )
    worker = threading.Thread(target=application.serve_requests, args=(stop,), daemon=True)
    worker.start()
    try:
        stop.wait()
    finally:
        redis.delete(application.keys.session)
        worker.join(timeout=3)
        initiator.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m venues.fix_session --venue V --host H --port P --sender S --target T
    --store DIR --redis-url URL``: a session without a venue row (tests, by hand); the
    Logon's Username/Password come from the venue's own ``OMS_VENUE_<V>_KEY``/``_SECRET``
    when set. ``oms fixvenue --venue V`` is the way with a row."""
    import argparse
    import os

    import redis

    from venues.credentials import env_name

    p = argparse.ArgumentParser(prog="python -m venues.fix_session")
    p.add_argument("--venue", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sender", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--redis-url", required=True)
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    config = SessionConfig(
        venue=args.venue, host=args.host, port=args.port, sender_comp_id=args.sender,
        target_comp_id=args.target, store_dir=args.store,
        username=os.environ.get(env_name(args.venue, "api_key_env")),
        password=os.environ.get(env_name(args.venue, "secret_env")),
    )  # fmt: skip
    run(config, redis.Redis.from_url(args.redis_url, socket_timeout=30))


if __name__ == "__main__":
    main()
