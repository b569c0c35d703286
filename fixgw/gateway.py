"""The order-entry gateway (``oms fixgw``): a FIX 4.4 acceptor for the OMS's clients.

Sessions are ``FixSession`` rows (read at start). A Logon must carry the user's name in
Username (553) and their API token in Password (554); the token is checked by the API's own
token authentication, so a revoked token or a deactivated user cannot log on over FIX
either. A refused Logon is answered with a Logout whose Text (58) says why (QuickFIX sends
it for ``RejectLogon``); a Logon for CompIDs that are no session is dropped by the engine,
as the FIX session rules require.

Orders: NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest and
OrderStatusRequest become the engine's commands (``fixgw/entry.py``), run for the
session's user on a thread of the session's own (a Python thread: Django keeps one
database connection per thread, and QuickFIX's own threads are not Python's); the
session's QuickFIX thread waits for it, so a message is consumed only once its order is
committed. Any other application message gets a BusinessMessageReject (Unsupported
Message Type). Execution reports go out from the user's report stream
(``fixgw/reports.py``) while the session is logged on.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import quickfix as fix
from django.conf import settings
from django.db import close_old_connections
from rest_framework.exceptions import AuthenticationFailed

from fixgw import engine as fe
from fixgw import mapping as m
from fixgw.engine import GIL_SWITCH_S, Acceptor, AcceptorConfig, SessionKey, serve
from fixgw.entry import HANDLERS
from fixgw.models import FixSession
from fixgw.reports import Pump, Reply, init_cursors
from omsweb.token_auth import TokenAuthentication

log = logging.getLogger(__name__)

USERNAME, PASSWORD = 553, 554
SENT_MEMORY = 10_000  # ExecIDs remembered per session, against a report sent twice


def _field(message: fix.Message, tag: int) -> str | None:
    return str(message.getField(tag)) if message.isSetField(tag) else None


def authenticate_logon(message: fix.Message, session_id: fix.SessionID) -> Any:
    """The session's user, or ``RejectLogon`` with the reason (sent as Text)."""
    close_old_connections()
    ours, theirs = session_id.getSenderCompID().getValue(), session_id.getTargetCompID().getValue()
    row = (
        FixSession.objects.select_related("user")
        .filter(sender_comp_id=theirs, target_comp_id=ours)
        .first()
    )
    if row is None or not row.enabled:
        raise fix.RejectLogon(f"session {theirs}->{ours} is disabled")
    username, token = _field(message, USERNAME), _field(message, PASSWORD)
    if not username:
        raise fix.RejectLogon("Logon must carry the user name in Username (553)")
    if not token:
        raise fix.RejectLogon("Logon must carry the user's API token in Password (554)")
    try:
        user, _ = TokenAuthentication().authenticate_credentials(token)
    except AuthenticationFailed as error:
        raise fix.RejectLogon(f"Password (554): {error.detail}") from None
    if user.pk != row.user_id or user.get_username() != username:
        raise fix.RejectLogon(f"Username (553) {username!r} does not match this session's user")
    return user


class Gateway(fix.Application):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._users: dict[str, Any] = {}  # session name -> its user, from the Logon
        self._workers: dict[str, ThreadPoolExecutor] = {}
        self._pumps: dict[str, Pump] = {}
        self._sent: dict[str, OrderedDict[str, None]] = {}  # session -> recent ExecIDs
        self._send_locks: dict[str, threading.Lock] = {}

    def _worker(self, name: str) -> ThreadPoolExecutor:
        with self._lock:
            if name not in self._workers:
                self._workers[name] = ThreadPoolExecutor(1, thread_name_prefix=f"fix-{name}")
            return self._workers[name]

    def onCreate(self, session_id: fix.SessionID) -> None:
        pass

    def onLogon(self, session_id: fix.SessionID) -> None:
        name = fe.session_name(session_id)
        user = self._users.get(name)
        if user is None:
            return
        pump = Pump(
            name, user.pk, lambda reply: self._send(reply, session_id),
            sent=lambda exec_id: exec_id in self._sent.get(name, ()),
        )  # fmt: skip
        with self._lock:
            old = self._pumps.pop(name, None)
            self._pumps[name] = pump
        if old is not None:
            old.stop()
            old.join(5)
        pump.start()

    def onLogout(self, session_id: fix.SessionID) -> None:
        with self._lock:
            pump = self._pumps.pop(fe.session_name(session_id), None)
        if pump is not None:
            pump.stop()

    def toAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromAdmin(self, message: fix.Message, session_id: fix.SessionID) -> None:
        if fe.msg_type(message) == fix.MsgType_Logon:
            user = (
                self._worker(fe.session_name(session_id))
                .submit(authenticate_logon, message, session_id)
                .result()
            )
            self._users[fe.session_name(session_id)] = user

    def toApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        pass

    def fromApp(self, message: fix.Message, session_id: fix.SessionID) -> None:
        kind = fe.msg_type(message)
        handler = HANDLERS.get(kind)
        if handler is None:
            raise fix.UnsupportedMessageType()
        name = fe.session_name(session_id)
        fields = fe.fields_of(message)
        replies = self._worker(name).submit(_handle, handler, kind, fields, self._users.get(name))
        for reply in replies.result():
            self._send(reply, session_id)

    def _send(self, reply: Reply, session_id: fix.SessionID) -> bool:
        """Send a reply; an execution report whose ExecID this session already got
        (the handler's PendingNew, then the same change from the stream) only once."""
        msg_type, body = reply
        exec_id = dict(body).get(m.EXEC_ID) if msg_type == "8" else None
        if exec_id is None:
            return fe.send(fe.message(msg_type, body), session_id)
        name = fe.session_name(session_id)
        with self._lock:
            sent = self._sent.setdefault(name, OrderedDict())
            lock = self._send_locks.setdefault(name, threading.Lock())
        # one session's sends in turn (a PendingNew before its New); never under
        # ``self._lock``, which QuickFIX's threads take at logon and logout
        with lock:
            if exec_id in sent:
                return True
            sent[exec_id] = None
            if len(sent) > SENT_MEMORY:
                sent.popitem(last=False)
            return fe.send(fe.message(msg_type, body), session_id)


def _handle(handler: Any, kind: str, fields: m.Fields, user: Any) -> list[Reply]:
    """Run one message's handler (on the session's worker thread); an unexpected error
    is answered with a BusinessMessageReject that says so, never a dropped session."""
    close_old_connections()
    try:
        return list(handler(fields, user=user))
    except Exception as error:
        log.exception("FIX %s message %s failed", kind, fields.get(34))
        text = (
            f"not processed ({type(error).__name__}); send an OrderStatusRequest (H) "
            "to learn whether the order exists"
        )
        body = [(m.REF_SEQ_NUM, fields.get(34, "0")), (m.REF_MSG_TYPE, kind),
                (m.BUSINESS_REJECT_REASON, m.BIZ_OTHER), (m.TEXT, text)]  # fmt: skip
        return [("j", body)]


def sessions() -> tuple[SessionKey, ...]:
    """Every session row, from the gateway's side (ours first)."""
    rows = FixSession.objects.order_by("pk").values_list("target_comp_id", "sender_comp_id")
    return tuple(SessionKey(ours, theirs) for ours, theirs in rows)


def _warm_up() -> None:
    """Load what the first order needs (the Celery app, the event listeners) before the
    first client does: on a busy machine that first load took seconds."""
    from omsweb import events
    from omsweb.celery import app

    events.listeners()
    app.amqp  # noqa: B018 - builds the producer side Celery sends tasks with


def session_users() -> dict[str, int]:
    """Each session's name (as QuickFIX names it, ours first) -> its user's id."""
    rows = FixSession.objects.values_list("target_comp_id", "sender_comp_id", "user_id")
    return {f"{fe.BEGIN_STRING}:{ours}->{theirs}": user for ours, theirs, user in rows}


def main(*, host: str, port: int, home: Path) -> None:
    keys = sessions()
    if not keys:
        # idle rather than exit: the process manager would restart an exiting gateway
        # until it gave up, and mark the whole OMS degraded for a gateway nobody uses
        print("no FIX sessions: add one in the admin (FIX gateway > Fix sessions), then restart")
        serve(None)
        return
    config = AcceptorConfig(
        port=port, host=host, store_dir=home / "fix" / "store", log_dir=home / "fix" / "log",
        sessions=keys, threaded=True, nodelay=True,
    )  # fmt: skip
    # a report hops from our threads to QuickFIX's: do not wait out Python's 5 ms switch
    sys.setswitchinterval(GIL_SWITCH_S)
    init_cursors(session_users())
    _warm_up()
    print(f"FIX gateway on {host}:{port}, {len(keys)} session(s), {settings.FIX_COMP_ID}")
    serve(Acceptor(Gateway(), config))
