"""Execution reports out: each logged-on session's pump reads its user's report stream
(``fixgw/listener.py``) and sends every record as an ExecutionReport or an
OrderCancelReject.

**Nothing missed, nothing twice.** A session has a cursor in Redis (``CURSOR_PREFIX``:
the id of the last record it sent); the pump starts at it on every logon, so what was
produced while the session was away is sent at its next logon (the handover), and moves
it after each message is handed to QuickFIX. From there QuickFIX's FileStore keeps the
message under its sequence number: a client that missed it asks for it again
(ResendRequest) and gets it, also after a restart of the gateway. A session seen for the
first time starts at the end of its user's stream (``init_cursors``): the history from
before it existed is not replayed. ExecID is ``<order id>-<event sequence>``: one per
order change, the same however often it is sent.

**ClOrdID.** An order is known by its client order id until a FIX replace: then by the
replace's ClOrdID. A report about a FIX cancel or replace carries the request's ClOrdID
and OrigClOrdID (``FixRequest`` rows, written by ``fixgw/entry.py`` in the transaction
of the request).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q

from fixgw import mapping as m
from fixgw.listener import stream_key
from fixgw.mapping import OrderFacts
from fixgw.models import FixRequest
from orders.models import OrderEvent

log = logging.getLogger(__name__)

CURSOR_PREFIX = "oms:fix:cursor:"
BATCH = 200
COMMIT_WAIT_S = 30.0  # a record's transaction still open after this: rolled back, skipped
MAX_ATTEMPTS = 3  # a record that cannot be built is skipped after this many (logged)

Body = list[tuple[int, str]]
Reply = tuple[str, Body]  # MsgType, body fields

_CANCEL_KINDS = {"OrderCancelRequested", "OrderCanceled", "OrderCancelRejected"}
_REPLACE_KINDS = {"OrderReplaceRequested", "OrderReplaced", "OrderReplaceRejected"}
_ANSWERS = {"OrderCanceled", "OrderCancelRejected", "OrderReplaced", "OrderReplaceRejected"}


def cursor_key(session: str) -> str:
    return CURSOR_PREFIX + session


def _redis():  # type: ignore[no-untyped-def]
    import redis

    # blocking reads: a connection of the pump's own, its timeout above the block time
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=10, socket_connect_timeout=5)


def init_cursors(sessions: dict[str, int]) -> None:
    """A cursor at the end of its user's stream for each session (name -> user id) that
    has none yet."""
    from omsweb.redis_client import client

    r = client()
    for name, user_id in sessions.items():
        last = r.xrevrange(stream_key(user_id), count=1)
        r.set(cursor_key(name), last[0][0] if last else b"0-0", nx=True)


# --- ClOrdIDs ---------------------------------------------------------------------------


def current_cl_ord_id(order_id: int, client_order_id: str, seq: int) -> str:
    """The ClOrdID the order was known by at its change ``seq``."""
    replaced = (
        FixRequest.objects.filter(
            order_id=order_id, kind=FixRequest.Kind.REPLACE, replaced=True, answered_seq__lt=seq
        )
        .order_by("-answered_seq")
        .values_list("cl_ord_id", flat=True)
        .first()
    )
    return replaced or client_order_id


def _request_for(facts: OrderFacts) -> FixRequest | None:
    """The FIX cancel or replace request change ``facts`` is about, if a FIX client asked."""
    if facts.kind in _CANCEL_KINDS:
        kind = FixRequest.Kind.CANCEL
    elif facts.kind in _REPLACE_KINDS:
        kind = FixRequest.Kind.REPLACE
    else:
        return None
    return (
        FixRequest.objects.filter(order_id=facts.order_id, kind=kind, after_seq__lt=facts.seq)
        .filter(Q(answered_seq__isnull=True) | Q(answered_seq__gte=facts.seq))
        .exclude(answered_seq=0)
        .order_by("id")
        .first()
    )


def replies_for(facts: OrderFacts) -> list[Reply]:
    """What a FIX client is told about one change of its order."""
    kind = m.report_kind(facts.kind)
    if kind is None:
        return []
    current = current_cl_ord_id(facts.order_id, facts.client_order_id, facts.seq)
    request = _request_for(facts)
    if request is not None:
        cl_ord_id, orig = request.cl_ord_id, request.orig_cl_ord_id
        if facts.kind in _ANSWERS:
            FixRequest.objects.filter(pk=request.pk, answered_seq__isnull=True).update(
                answered_seq=facts.seq, replaced=facts.kind == "OrderReplaced"
            )
    else:
        cl_ord_id = current
        orig = current if facts.kind in _CANCEL_KINDS | _REPLACE_KINDS else None
    if kind == "9":
        response_to = m.CANCEL_REJECT_RESPONSE_TO[facts.kind]
        what = "cancel" if response_to == "1" else "replace"
        return [("9", m.cancel_reject(
            order_id=str(facts.order_id), cl_ord_id=cl_ord_id, orig_cl_ord_id=orig or current,
            status=facts.status, response_to=response_to, reason=m.CXL_OTHER,
            text=f"the venue refused the {what}; the order stands as it was",
        ))]  # fmt: skip
    return [("8", m.execution_report(facts, cl_ord_id=cl_ord_id, orig_cl_ord_id=orig))]


# --- the pump -----------------------------------------------------------------------------


class Pump(threading.Thread):
    """Sends one session's reports while it is logged on (``stop()`` at logout)."""

    def __init__(
        self, session: str, user_id: int, send: Callable[[Reply], bool],
        sent: Callable[[str], bool] = lambda exec_id: False,
    ) -> None:  # fmt: skip
        """``send`` sends a reply on the session; ``sent(exec_id)``: whether the session
        already got that report (the handler sends a new order's PendingNew itself)."""
        super().__init__(name=f"fix-reports-{session}", daemon=True)
        self.session, self.user_id, self._send, self._sent = session, user_id, send, sent
        self._stop = threading.Event()
        self._failures: dict[bytes, int] = {}

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        r = _redis()
        key, cursor_at = stream_key(self.user_id), cursor_key(self.session)
        try:
            while not self._stop.is_set():
                try:
                    cursor = r.get(cursor_at) or b"0-0"
                    batches = r.xread({key: cursor}, count=BATCH, block=500)
                except Exception:
                    log.exception("FIX reports for %s: Redis read failed", self.session)
                    self._stop.wait(1.0)
                    continue
                for _, entries in batches or []:
                    if not self._deliver(r, cursor_at, entries):
                        return
        finally:
            close_old_connections()
            r.close()

    def _committed(self, facts: OrderFacts) -> bool:
        """Wait until the change ``facts`` records is committed (the listener appends it
        inside the engine's transaction); False if it never is (rolled back)."""
        deadline = time.monotonic() + COMMIT_WAIT_S
        pause = 0.002
        while not self._stop.is_set():
            if OrderEvent.objects.filter(order_id=facts.order_id, sequence=facts.seq).exists():
                return True
            if time.monotonic() > deadline:
                log.warning("FIX report of order %s #%s: never committed, skipped",
                            facts.order_id, facts.seq)  # fmt: skip
                return False
            # the transaction is usually a few ms from its commit: look again soon, then
            # less often (each look is a query beside the engine's own)
            self._stop.wait(pause)
            pause = min(pause * 2, 0.1)
        return False

    def _deliver(self, r, cursor_at: str, entries) -> bool:  # type: ignore[no-untyped-def]
        close_old_connections()
        for entry_id, raw in entries:
            if self._stop.is_set():
                return False
            record = {k.decode(): v.decode() for k, v in raw.items()}
            try:
                facts = OrderFacts.from_record(record)
                if self._sent(facts.exec_id):
                    replies = []  # the handler sent it already
                else:
                    replies = replies_for(facts) if self._committed(facts) else []
            except Exception:
                log.exception("FIX report %s for %s not built", entry_id, self.session)
                failures = self._failures[entry_id] = self._failures.get(entry_id, 0) + 1
                if failures < MAX_ATTEMPTS:
                    self._stop.wait(1.0)
                    return True  # the cursor stays: read again (the database was away?)
                replies = []  # never block the session's other reports behind one record
            if self._stop.is_set():
                return False  # logged out while waiting: this record waits for the next logon
            for reply in replies:
                try:
                    sent = self._send(reply)
                except Exception:
                    log.exception("FIX report %s for %s not sent", entry_id, self.session)
                    sent = False
                if not sent:
                    log.warning("FIX session %s: reports wait for its next logon", self.session)
                    return False
            r.set(cursor_at, entry_id)
        return True
