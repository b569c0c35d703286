"""Orders over FIX end to end: a simplefix client over a socket -> ``oms fixgw`` -> the
execution engine -> Celery -> the simulated exchange, and execution reports back.

One gateway for the module, added to the session's stack (its database and Redis): a
FIX session for the stack's trader, whose REST token is also its FIX Password. Reports
of earlier tests can still arrive at a later logon (the gateway hands over what a
session missed), so every test picks its own ClOrdIDs out of what it receives.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import pytest
import simplefix

from omsweb.stack import ROOT, Proc, free_port, wait_for
from tests.fixgw.client import FixClient, now
from tests.system.conftest import order_status

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=False)]

SENDER, TARGET, USER = "SYSFIX", "OMS", "sys-trader"
_ids = itertools.count(1)


def clid(prefix: str) -> str:
    return f"fx-{prefix}-{next(_ids)}"


ADD_SESSION = f"""
from django.contrib.auth.models import User
from fixgw.models import FixSession
FixSession.objects.get_or_create(sender_comp_id="{SENDER}", target_comp_id="{TARGET}",
                                 defaults={{"user": User.objects.get(username="{USER}")}})
"""


class Gateway:
    def __init__(self, stack, home) -> None:
        self.stack, self.home, self.port = stack, home, free_port()
        self.env = {**stack.env, "OMS_HOME": str(home)}
        self.proc: Proc | None = None

    def start(self) -> None:
        log = self.home / "fixgw.log"
        start = log.stat().st_size if log.exists() else 0
        argv = [sys.executable, "-m", "omsweb.cli", "fixgw", "--port", str(self.port)]
        self.proc = Proc(argv, self.env, log)

        def ready() -> bool:
            return "ready" in log.read_text()[start:] or not self.proc.alive()

        wait_for(ready, timeout=60)
        assert self.proc.alive(), log.read_text()

    def client(self) -> FixClient:
        return FixClient(self.port, SENDER, TARGET)


@pytest.fixture(scope="module")
def gw(stack, tmp_path_factory):
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", ADD_SESSION],
        env=stack.env, cwd=ROOT, check=True,
    )  # fmt: skip
    home = tmp_path_factory.mktemp("fixgw")
    if os.environ.get("OMS_TEST_FIXGW_HOME"):  # to read its logs after the run
        home = Path(os.environ["OMS_TEST_FIXGW_HOME"])
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
    gateway = Gateway(stack, home)
    gateway.start()
    yield gateway
    gateway.proc.stop()


@pytest.fixture
def fix(gw):
    client = gw.client()
    client.logon(USER, gw.stack.token)
    reply = client.receive()
    assert reply is not None and reply.get(35) == b"A", reply
    yield client
    client.close()


# --- helpers -------------------------------------------------------------------------


def book(stack):
    return stack.sim_get("/sim/state", depth=5)["books"]["BTCUSDT"]


def resting_price(stack) -> D:
    return (D(book(stack)["bids"][0][0]) * D("0.9")).quantize(D("0.01"))


def crossing_price(stack) -> D:
    return (D(book(stack)["asks"][0][0]) * D("1.01")).quantize(D("0.01"))


def new_order(client, cl, *, qty="0.001", price=None, side="1", ord_type="2", account="DEMO",
              symbol="BTC/USDT", extra=()):  # fmt: skip
    fields = [(11, cl), (1, account), (55, symbol), (54, side), (60, now()), (38, qty),
              (40, ord_type)]  # fmt: skip
    if price is not None:
        fields.append((44, str(price)))
    client.send("D", *fields, *extra)


def about(msg, cl: str) -> bool:
    return cl in (msg.get(11), msg.get(41)) or cl.encode() in (msg.get(11), msg.get(41))


def collect(client, cl: str, until, timeout: float = 30.0) -> list:
    """The messages about ``cl`` (ClOrdID or OrigClOrdID) until ``until(msg)``; others
    wait in the client's backlog for the collect that wants them."""
    backlog = client.__dict__.setdefault("backlog", [])
    got = []
    for msg in list(backlog):
        if about(msg, cl):
            backlog.remove(msg)
            got.append(msg)
            if until(msg):
                return got
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.receive(timeout=max(0.1, deadline - time.monotonic()))
        assert msg is not None, "the gateway closed the connection"
        if not about(msg, cl):
            backlog.append(msg)
            continue
        got.append(msg)
        if until(msg):
            return got
    raise AssertionError(f"{cl}: {[m.get(150) or m.get(35) for m in got]}")


def next_session_reject(client):
    backlog = client.__dict__.setdefault("backlog", [])
    for _ in range(100):
        msg = client.receive()
        assert msg is not None, "the gateway closed the connection"
        if msg.get(35) == b"3":
            return msg
        backlog.append(msg)
    raise AssertionError("no session Reject")


def tag(msg, n: int) -> str:
    value = msg.get(n)
    return value.decode() if value is not None else ""


def exec_types(msgs) -> list[str]:
    return [tag(m, 150) if tag(m, 35) == "8" else "cxlrej" for m in msgs]


def is_exec(*types: str):
    return lambda m: tag(m, 35) == "8" and tag(m, 150) in types


# --- tests ---------------------------------------------------------------------------


def test_limit_order_rests_then_pending_new_new_and_the_same_order_over_rest(gw, fix):
    cl = clid("rest")
    new_order(fix, cl, price=resting_price(gw.stack))
    msgs = collect(fix, cl, is_exec("0"))
    assert exec_types(msgs) == ["A", "0"]
    assert [tag(m, 39) for m in msgs] == ["A", "0"]
    new = msgs[-1]
    assert tag(new, 151) == "0.001" and tag(new, 14) == "0" and tag(new, 1) == "DEMO"
    body = gw.stack.api().get(f"/api/v1/orders/{tag(new, 37)}/").json()
    assert body["client_order_id"] == cl and body["status"] == "ACCEPTED"
    # cancel: PendingCancel then Canceled, both naming the cancel request
    cancel = clid("cxl")
    fix.send("F", (11, cancel), (41, cl), (55, "BTC/USDT"), (54, "1"), (60, now()),
             (38, "0.001"))  # fmt: skip
    msgs = collect(fix, cancel, is_exec("4"))
    assert exec_types(msgs) == ["6", "4"]
    assert all(tag(m, 41) == cl for m in msgs) and tag(msgs[-1], 39) == "4"


def test_crossing_order_then_trades_adding_up_to_filled(gw, fix):
    cl = clid("cross")
    new_order(fix, cl, qty="0.003", price=crossing_price(gw.stack))
    msgs = collect(fix, cl, lambda m: tag(m, 39) == "2")
    trades = [m for m in msgs if tag(m, 150) == "F"]
    assert trades and exec_types(msgs)[0] == "A"
    assert sum(D(tag(t, 32)) for t in trades) == D("0.003")
    cum = D(0)
    for t in trades:  # cumulative quantities add up report by report
        cum += D(tag(t, 32))
        assert D(tag(t, 14)) == cum and D(tag(t, 151)) == D("0.003") - cum
    last = trades[-1]
    vwap = sum(D(tag(t, 32)) * D(tag(t, 31)) for t in trades) / D("0.003")
    assert abs(D(tag(last, 6)) - vwap) < D("0.0001")
    assert len({tag(m, 17) for m in msgs}) == len(msgs)  # ExecIDs unique


def test_replace_then_pending_replace_replaced_and_known_by_the_new_clordid(gw, fix):
    cl, price = clid("orig"), resting_price(gw.stack)
    new_order(fix, cl, price=price)
    collect(fix, cl, is_exec("0"))
    repl, new_price = clid("repl"), price - D("1.00")
    fix.send("G", (11, repl), (41, cl), (1, "DEMO"), (55, "BTC/USDT"), (54, "1"), (60, now()),
             (38, "0.002"), (40, "2"), (44, str(new_price)))  # fmt: skip
    msgs = collect(fix, repl, is_exec("5"))
    assert exec_types(msgs) == ["E", "5"]
    replaced = msgs[-1]
    assert tag(replaced, 41) == cl and tag(replaced, 38) == "0.002"
    assert D(tag(replaced, 44)) == new_price and tag(replaced, 39) == "0"
    # a status request by the new id, then a cancel naming it
    fix.send("H", (11, repl), (55, "BTC/USDT"), (54, "1"))
    status = collect(fix, repl, is_exec("I"))[-1]
    assert tag(status, 39) == "0" and tag(status, 38) == "0.002"
    cancel = clid("cxl")
    fix.send("F", (11, cancel), (41, repl), (55, "BTC/USDT"), (54, "1"), (60, now()),
             (38, "0.002"))  # fmt: skip
    assert exec_types(collect(fix, cancel, is_exec("4"))) == ["6", "4"]


def test_risk_denial_then_rejected_with_the_reason(gw, fix):
    cl = clid("risk")
    new_order(fix, cl, qty="150", price=resting_price(gw.stack))
    (rejected,) = collect(fix, cl, is_exec("8"))
    assert tag(rejected, 39) == "8" and tag(rejected, 103) == "3"
    assert "MAX_ORDER_QUANTITY" in tag(rejected, 58)
    assert tag(rejected, 37) != "NONE"  # stored as DENIED, like a REST denial


def test_bad_input_and_duplicates_then_refused_with_a_clear_text(gw, fix):
    price = resting_price(gw.stack)
    cl = clid("dup")
    new_order(fix, cl, price=price)
    collect(fix, cl, is_exec("0"))
    new_order(fix, cl, price=price)  # the same ClOrdID again
    (dup,) = collect(fix, cl, is_exec("8"))
    assert tag(dup, 103) == "6" and "already used" in tag(dup, 58) and tag(dup, 37) == "NONE"
    cases = [
        (dict(symbol="NOPE/USDT", price=price), "Symbol (55): unknown symbol 'NOPE/USDT'"),
        (dict(account="NOBODY", price=price), "Account (1): unknown account 'NOBODY'"),
        (dict(ord_type="1", price=price), "Price (44) is not allowed on a market order"),
        (dict(price=None), "Price (44) is required on a limit order"),
        (dict(price=price, extra=[(59, "0")]), "TimeInForce (59) '0' is not supported"),
    ]
    for kwargs, text in cases:
        bad = clid("bad")
        new_order(fix, bad, **kwargs)
        (rej,) = collect(fix, bad, is_exec("8"))
        assert text in tag(rej, 58), (kwargs, tag(rej, 58))
    unknown = clid("cxl")
    fix.send("F", (11, unknown), (41, "never-sent"), (55, "BTC/USDT"), (54, "1"), (60, now()),
             (38, "1"))  # fmt: skip
    (cxl_rej,) = collect(fix, unknown, lambda m: True)
    assert tag(cxl_rej, 35) == "9" and tag(cxl_rej, 102) == "1" and tag(cxl_rej, 434) == "1"
    fix.send("H", (11, "never-sent"), (55, "BTC/USDT"), (54, "1"))
    (st,) = collect(fix, "never-sent", lambda m: True)
    assert tag(st, 150) == "I" and tag(st, 39) == "8"
    # the session is still up
    fix.send("F", (11, clid("cxl")), (41, cl), (55, "BTC/USDT"), (54, "1"), (60, now()),
             (38, "0.001"))  # fmt: skip
    collect(fix, cl, is_exec("4"))


def test_malformed_messages_then_session_reject_or_dropped_and_the_session_stays_up(gw, fix):
    # a NewOrderSingle without Side (54): the session layer's Reject, naming the tag
    cl = clid("noside")
    fix.send("D", (11, cl), (1, "DEMO"), (55, "BTC/USDT"), (60, now()), (38, "0.001"),
             (40, "2"), (44, "1"))  # fmt: skip
    reject = next_session_reject(fix)
    assert (tag(reject, 35), tag(reject, 371), tag(reject, 373)) == ("3", "54", "1")
    # a wrong checksum: dropped unread (FIX: a garbled message is ignored); the next
    # message's sequence number shows the gap, which the client fills when asked
    fix.seq += 1
    raw = simplefix.FixMessage()
    for t, v in ((8, "FIX.4.4"), (35, "H"), (34, str(fix.seq)), (49, SENDER), (52, now()),
                 (56, TARGET), (11, "garbled"), (55, "BTC/USDT"), (54, "1")):  # fmt: skip
        raw.append_pair(t, v)
    data = raw.encode()
    fix.sock.sendall(data[:-4] + (b"000" if not data.endswith(b"000\x01") else b"001") + b"\x01")
    fix.send("H", (11, "after-garbled"), (55, "BTC/USDT"), (54, "1"))
    (status,) = collect(fix, "after-garbled", lambda m: True)
    assert tag(status, 150) == "I" and tag(status, 39) == "8"  # answered: the session is up


def test_order_entered_over_rest_then_reported_to_the_fix_session(gw, fix):
    api = gw.stack.api()
    cl = clid("drop")
    r = api.post("/api/v1/orders/", {"client_order_id": cl, "account": "DEMO",
                 "symbol": "BTC/USDT", "side": "buy", "type": "limit", "quantity": "0.001",
                 "price": str(resting_price(gw.stack))})  # fmt: skip
    assert r.status_code == 201, r.text
    msgs = collect(fix, cl, is_exec("0"))
    assert exec_types(msgs) == ["A", "0"] and tag(msgs[-1], 37) == str(r.json()["id"])
    api.post(f"/api/v1/orders/{r.json()['id']}/cancel/")
    assert exec_types(collect(fix, cl, is_exec("4"))) == ["6", "4"]


def test_disconnect_during_fills_then_missed_reports_at_relogon(gw):
    client = gw.client()
    client.logon(USER, gw.stack.token)
    assert client.receive().get(35) == b"A"
    cl = clid("gone")
    new_order(client, cl, qty="0.002", price=crossing_price(gw.stack))
    client.close()  # gone before any report is read
    api = gw.stack.api()
    rest_cl = clid("while-away")
    r = api.post("/api/v1/orders/", {"client_order_id": rest_cl, "account": "DEMO",
                 "symbol": "BTC/USDT", "side": "buy", "type": "limit", "quantity": "0.001",
                 "price": str(crossing_price(gw.stack))})  # fmt: skip
    assert r.status_code == 201, r.text
    wait_for(order_status(api, r.json()["id"], "FILLED"), timeout=20)
    client.reconnect()
    client.logon(USER, gw.stack.token, reset=False)
    assert client.receive().get(35) == b"A"
    try:
        for order_cl, qty in ((cl, D("0.002")), (rest_cl, D("0.001"))):
            msgs = collect(client, order_cl, lambda m: tag(m, 39) == "2")
            assert exec_types(msgs)[0] == "A"
            assert sum(D(tag(m, 32)) for m in msgs if tag(m, 150) == "F") == qty
            assert len({tag(m, 17) for m in msgs}) == len(msgs)  # nothing twice
    finally:
        client.close()


def test_gateway_killed_then_restarted_with_sequence_numbers_continuing(gw):
    client = gw.client()
    client.logon(USER, gw.stack.token)
    assert client.receive().get(35) == b"A"
    cl = clid("kill")
    # a quantity of its own: the module's other resting orders must not make this one
    # a duplicate (risk refuses a 4th identical order within 2 s)
    new_order(client, cl, qty="0.00107", price=resting_price(gw.stack))
    ack = collect(client, cl, lambda m: m.get(150) in (b"0", b"8"))[-1]
    assert ack.get(150) == b"0", ack.get(58)  # New, else the reason it was refused
    sent, expected = client.seq, client.expected
    gw.proc.kill()
    client.close()
    gw.start()
    client.reconnect()
    client.logon(USER, gw.stack.token, reset=False)
    try:
        reply = client.receive()
        assert reply.get(35) == b"A" and int(reply.get(34)) >= expected  # not reset to 1
        assert client.seq == sent + 1  # ours carried on too, and were accepted
        cancel = clid("cxl")
        client.send("F", (11, cancel), (41, cl), (55, "BTC/USDT"), (54, "1"), (60, now()),
                    (38, "0.00107"))  # fmt: skip
        msgs = collect(client, cancel, is_exec("4"))
        assert exec_types(msgs) == ["6", "4"]
    finally:
        client.close()
