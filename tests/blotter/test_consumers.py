"""The blotter WebSocket (/ws/blotter/) through a real uvicorn server (the session
``web_server``) and the Redis channel layer: authentication, visibility, snapshot,
sequence numbers, batching. One test drives the ASGI app in process (to slow its
snapshot down)."""

from __future__ import annotations

import json
import time

import pytest
from asgiref.sync import async_to_sync
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from omsweb import realtime

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings(
        "ignore:No directory at:UserWarning"
    ),  # WhiteNoise, no collectstatic
]


@pytest.fixture
def ws_open(web_server, users):
    """``ws_open(path, headers=..., origin=...)``: a WebSocket client to the live server."""
    opened = []

    def make(
        path: str = "/ws/blotter/", *, headers=None, origin=None, token=None, subprotocols=None
    ):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Token {token}"
        ws = connect(
            web_server.replace("http://", "ws://") + path,
            additional_headers=headers,
            origin=origin,
            subprotocols=subprotocols,
            open_timeout=5,
        )
        opened.append(ws)
        return ws

    yield make
    for ws in opened:
        ws.close()


def until(ws, kind: str, timeout: float = 5.0) -> dict:
    """The next message of type ``kind`` (ticks and others in between are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] == kind:
            return message


def close_code(ws) -> int:
    with pytest.raises(ConnectionClosed) as closed:
        for _ in range(10):
            ws.recv(timeout=5)
    return closed.value.rcvd.code


def _account_id(code: str) -> int:
    from orders.models import Account

    return Account.objects.get(code=code).pk


def test_no_credentials_then_error_and_close_4401(ws_open):
    ws = ws_open()
    message = json.loads(ws.recv(timeout=5))
    assert message["type"] == "error" and message["code"] == "unauthenticated"
    assert close_code(ws) == 4401


def test_bad_token_then_4401(ws_open):
    ws = ws_open(token="not-a-token")
    assert json.loads(ws.recv(timeout=5))["code"] == "unauthenticated"
    assert close_code(ws) == 4401


def test_trader_token_then_snapshot_of_own_accounts_only(ws_open, users):
    demo = _account_id("DEMO")
    snap = until(ws_open(token=users["trader"]), "snapshot")
    assert [a["code"] for a in snap["accounts"]] == ["DEMO"]
    assert set(snap["seqs"]) == {f"account:{demo}", "global"}
    assert snap["user"]["username"] == "trader" and not snap["user"]["can_kill_switch"]
    assert {i["symbol"] for i in snap["instruments"]} >= {"BTC/USDT", "ETH/USDT"}
    assert {v["venue"] for v in snap["venues"]} >= {"sim-a", "sim-b"}
    for key in ("orders", "fills", "positions", "marks", "quotes", "trading_state"):
        assert key in snap


def test_token_as_subprotocol_then_snapshot_and_risk_sees_all(ws_open, users):
    ws = ws_open(subprotocols=["oms.v1", f"oms.token.{users['risk']}"])
    assert ws.subprotocol == "oms.v1"  # the token is never echoed back
    snap = until(ws, "snapshot")
    assert [a["code"] for a in snap["accounts"]] == ["DEMO", "HEDGE"]
    assert snap["user"]["can_kill_switch"]


def test_token_in_query_string_then_refused_4401(ws_open, users):
    ws = ws_open(f"/ws/blotter/?token={users['risk']}")
    message = json.loads(ws.recv(timeout=5))
    assert message["code"] == "unauthenticated" and "Authorization" in message["message"]
    assert close_code(ws) == 4401


def test_snapshot_lists_working_and_recent_orders_fills_and_positions(ws_open, users):
    from decimal import Decimal as D

    from orders.models import Account, Fill, Instrument, Order, Position
    from venues.models import Venue

    demo, hedge = Account.objects.get(code="DEMO"), Account.objects.get(code="HEDGE")
    btc, venue = Instrument.objects.get(symbol="BTC/USDT"), Venue.objects.get(name="sim-a")
    common = {"instrument": btc, "venue": venue, "side": "buy", "type": "limit",
              "quantity": D("1"), "price": D("10"), "request_fingerprint": "x"}  # fmt: skip
    Order.objects.create(client_order_id="c-work", account=demo, status="ACCEPTED", **common)
    done = Order.objects.create(client_order_id="c-done", account=demo, status="FILLED",
                                filled_quantity=D("1"), **common)  # fmt: skip
    Order.objects.create(client_order_id="c-other", account=hedge, status="ACCEPTED", **common)
    Fill.objects.create(order=done, venue=venue, venue_trade_id="t-1", account=demo,
                        instrument=btc, side="buy", quantity=D("1"), price=D("10"))  # fmt: skip
    Position.objects.create(account=demo, instrument=btc, quantity=D("1"), average_price=D("10"))

    snap = until(ws_open(token=users["trader"]), "snapshot")
    assert [o["client_order_id"] for o in snap["orders"]] == ["c-work", "c-done"]
    assert snap["orders"][0]["version"] == 0
    assert [f["venue_trade_id"] for f in snap["fills"]] == ["t-1"]
    assert snap["fills"][0]["client_order_id"] == "c-done"
    assert [(p["account"], p["symbol"], p["quantity"]) for p in snap["positions"]] == [
        ("DEMO", "BTC/USDT", "1")
    ]


def test_event_after_snapshot_then_next_seq_and_other_accounts_not_delivered(ws_open, users):
    demo, hedge = _account_id("DEMO"), _account_id("HEDGE")
    ws = ws_open(token=users["trader"])
    snap = until(ws, "snapshot")
    realtime.publish("order.updated", account_id=hedge, data={"id": -2})
    realtime.publish("order.updated", account_id=demo, data={"id": -1})
    assert realtime.flush(2.0)
    (event,) = until(ws, "events")["events"]
    assert event["data"] == {"id": -1}
    assert event["stream"] == f"account:{demo}"
    assert event["seq"] == snap["seqs"][f"account:{demo}"] + 1


def test_burst_of_events_then_batched_into_few_frames_in_order(ws_open, users):
    demo = _account_id("DEMO")
    count = 400
    ws = ws_open(token=users["trader"])
    snap = until(ws, "snapshot")
    for i in range(count):
        realtime.publish("order.updated", account_id=demo, data={"id": i})
        if i % 50 == 0:
            time.sleep(0.005)  # a burst spread over a few flush intervals
    assert realtime.flush(5.0)
    frames, events = 0, []
    while len(events) < count:
        events.extend(until(ws, "events")["events"])
        frames += 1
    start = snap["seqs"][f"account:{demo}"]
    assert [e["seq"] for e in events] == list(range(start + 1, start + count + 1))
    assert [e["data"]["id"] for e in events] == list(range(count))
    assert frames <= 20, f"{frames} frames for {count} events: not batched"


def test_client_asks_for_snapshot_then_gets_a_fresh_one(ws_open, users):
    demo = _account_id("DEMO")
    ws = ws_open(token=users["trader"])
    first = until(ws, "snapshot")
    realtime.publish("order.updated", account_id=demo, data={"id": 1})
    assert realtime.flush(2.0)
    until(ws, "events")
    ws.send(json.dumps({"type": "snapshot"}))
    second = until(ws, "snapshot")
    key = f"account:{demo}"
    assert second["seqs"][key] == first["seqs"][key] + 1
    ws.send(json.dumps({"type": "ping"}))
    assert until(ws, "pong")["type"] == "pong"
    ws.send(json.dumps({"type": "nonsense"}))
    assert until(ws, "error")["code"] == "bad_request"


def test_tick_carries_counters_marks_and_venue_state(ws_open, users):
    from omsweb.redis_client import client

    client().set("oms:mark:BTC/USDT", "60000.5", ex=30)
    try:
        ws = ws_open(token=users["trader"])
        until(ws, "snapshot")
        tick = until(ws, "tick", timeout=3)
    finally:
        # the risk checks read marks too (price collar): tests after this one start without
        client().delete("oms:mark:BTC/USDT")
    assert tick["marks"]["BTC/USDT"] == "60000.5"
    assert set(tick["seqs"]) == {f"account:{_account_id('DEMO')}", "global"}
    sim_a = next(v for v in tick["venues"] if v["venue"] == "sim-a")
    assert sim_a["breaker"] == "closed" and "usage" in sim_a["rate_limit"]


def _session_cookie(username: str) -> str:
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username=username))
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def test_session_from_own_origin_then_snapshot(ws_open, web_server):
    ws = ws_open(headers={"Cookie": _session_cookie("trader")}, origin=web_server)
    assert until(ws, "snapshot")["user"]["username"] == "trader"


def test_session_from_own_host_on_another_port_then_4403(ws_open, web_server):
    host, port = web_server.rsplit(":", 1)
    ws = ws_open(headers={"Cookie": _session_cookie("trader")}, origin=f"{host}:{int(port) + 1}")
    assert json.loads(ws.recv(timeout=5))["code"] == "forbidden_origin"
    assert close_code(ws) == 4403


def test_session_from_foreign_origin_then_4403(ws_open):
    ws = ws_open(headers={"Cookie": _session_cookie("trader")}, origin="http://evil.example")
    assert json.loads(ws.recv(timeout=5))["code"] == "forbidden_origin"
    assert close_code(ws) == 4403


def test_event_published_while_snapshot_is_read_then_sent_after_it(users, monkeypatch):
    """In process: the consumer joins its groups before reading the snapshot, so an event
    published meanwhile comes right after the snapshot, numbered after it."""
    from asgiref.testing import ApplicationCommunicator

    from blotter import snapshot
    from omsweb.asgi import application

    demo = _account_id("DEMO")
    original = snapshot.build

    def slow_build(*args, **kwargs):
        data = original(*args, **kwargs)
        realtime.publish("order.updated", account_id=demo, data={"id": "during"})
        realtime.flush(2.0)
        time.sleep(0.2)
        return data

    monkeypatch.setattr(snapshot, "build", slow_build)
    scope = {
        "type": "websocket",
        "path": "/ws/blotter/",
        "raw_path": b"/ws/blotter/",
        "query_string": b"",
        "headers": [(b"authorization", f"Token {users['trader']}".encode())],
        "subprotocols": [],
    }

    async def scenario():
        app = ApplicationCommunicator(application, scope)
        await app.send_input({"type": "websocket.connect"})
        assert (await app.receive_output(5))["type"] == "websocket.accept"
        received = []
        while len(received) < 2:
            message = json.loads((await app.receive_output(5))["text"])
            if message["type"] in ("snapshot", "events"):
                received.append(message)
        await app.send_input({"type": "websocket.disconnect", "code": 1000})
        await app.wait(5)
        return received

    snap, batch = async_to_sync(scenario)()
    assert snap["type"] == "snapshot" and batch["type"] == "events"
    (event,) = batch["events"]
    assert event["data"] == {"id": "during"}
    assert event["seq"] == snap["seqs"][f"account:{demo}"] + 1


def test_idle_longer_than_a_redis_read_timeout_then_still_live(ws_open, users):
    """The channel layer waits on Redis 5 s at a time; an idle consumer must outlive a
    client read timeout of the same length (redis-py 8's default) and still deliver."""
    demo = _account_id("DEMO")
    ws = ws_open(token=users["trader"])
    snap = until(ws, "snapshot")
    time.sleep(6.5)
    realtime.publish("order.updated", account_id=demo, data={"id": "after-idle"})
    assert realtime.flush(2.0)
    (event,) = until(ws, "events")["events"]
    assert event["seq"] == snap["seqs"][f"account:{demo}"] + 1
