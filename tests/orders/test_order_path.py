"""The API's submit path reads and writes in few statements (omsweb/token_auth.py, the
engine's one read of account, instrument and venue in orders/engine.py, the writer's
one insert in orders/writer.py) and still answers from current data: who may trade an
account, disabled instruments, revoked tokens."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test import Client
from django.test.utils import CaptureQueriesContext

from orders.models import Order, OrderEvent
from tests.conftest import limit_order
from tests.marking import mark_sent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_market_data():
    """No books or marks left by other tests: their prices would put ours off-collar."""
    from omsweb.redis_client import client

    r = client()
    stale = list(r.scan_iter("oms:book:*")) + list(r.scan_iter("oms:mark:*"))
    if stale:
        r.delete(*stale)


def _client(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {token}")


def _post(client: Client, body: dict):
    return client.post("/api/v1/orders/", body, content_type="application/json")


def test_submit_with_a_venue_then_six_round_trips(users):
    # Arrange
    client = _client(users["trader"])
    assert _post(client, limit_order(client_order_id="warm", venue="sim-a")).status_code == 201
    # Act
    with CaptureQueriesContext(connection) as queries:
        r = _post(client, limit_order(client_order_id="counted", venue="sim-a"))
    # Assert: token + user; account, instrument and venue; BEGIN; order + event; the
    # risk lock and reads (one query of two statements); COMMIT
    assert r.status_code == 201, r.content
    assert [q["sql"][:6] for q in queries] == [
        "SELECT",
        "SELECT",
        "BEGIN",
        "WITH o",
        "SELECT",
        "COMMIT",
    ]


def test_trader_taken_off_the_account_then_next_order_400_account(users):
    from django.contrib.auth.models import User

    from orders.models import Account

    client = _client(users["trader"])
    assert _post(client, limit_order(client_order_id="before")).status_code == 201
    Account.objects.get(code="DEMO").members.remove(User.objects.get(username="trader"))
    r = _post(client, limit_order(client_order_id="after"))
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "account"
    assert not Order.objects.filter(client_order_id="after").exists()


def test_trader_cannot_trade_another_account_but_risk_and_admin_can(users):
    body = limit_order(account="HEDGE")
    r = _post(_client(users["trader"]), {**body, "client_order_id": "t"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "account"
    for name in ("risk", "admin"):
        r = _post(_client(users[name]), {**body, "client_order_id": name})
        assert r.status_code == 201, (name, r.content)
        assert r.json()["account"] == "HEDGE"


def test_unknown_account_symbol_and_venue_then_400_naming_each(users):
    r = _post(
        _client(users["trader"]),
        limit_order(account="NOPE", symbol="XYZ/USDT", venue="nowhere"),
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["field"] == "account"
    assert set(error["fields"]) == {"account", "symbol", "venue"}
    assert error["fields"]["venue"] == ["unknown venue 'nowhere'"]


def test_instrument_disabled_between_two_orders_then_second_refused(users):
    from orders.models import Instrument

    client = _client(users["trader"])
    assert _post(client, limit_order(client_order_id="on")).status_code == 201
    Instrument.objects.filter(symbol="BTC/USDT").update(enabled=False)
    r = _post(client, limit_order(client_order_id="off"))
    assert r.status_code == 400 and r.json()["error"]["field"] == "symbol"


def test_deleted_token_or_inactive_user_then_401(users):
    from django.contrib.auth.models import User

    from omsweb.token_auth import find

    client = _client(users["trader"])
    assert client.get("/api/v1/orders/").status_code == 200
    User.objects.filter(username="trader").update(is_active=False)
    assert client.get("/api/v1/orders/").status_code == 401
    User.objects.filter(username="trader").update(is_active=True)
    find(users["trader"]).delete()
    r = client.get("/api/v1/orders/")
    assert r.status_code == 401 and r.json()["error"]["code"] == "AUTHENTICATION_FAILED"
    assert _client("not-a-token").get("/api/v1/orders/").status_code == 401


def test_new_order_and_event_rows_as_the_orm_writes_them(users):
    from django.contrib.auth.models import User

    from orders import engine
    from orders.domain.commands import SubmitOrder

    # Act
    result = engine.execute(
        SubmitOrder(
            user_id=User.objects.get(username="trader").pk,
            account="DEMO",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            quantity=D("0.01"),
            price=D("50000.00"),
            venue="sim-a",
            client_order_id="rows-1",
        )
    )
    # Assert: the instance returned is what the database holds
    order = result.order
    assert result.created and order.pk is not None and not order._state.adding
    stored = Order.objects.get(pk=order.pk)
    assert model_to_dict(stored) == model_to_dict(order)
    assert (stored.created_at, stored.updated_at) == (order.created_at, order.updated_at)
    assert stored.status == "PENDING_NEW" and stored.event_sequence == 1
    assert stored.price == D("50000") and stored.request_fingerprint
    event = OrderEvent.objects.get(order=stored)
    assert (event.sequence, event.kind, event.source, event.status, event.late) == (
        1,
        "OrderCreated",
        "api",
        "PENDING_NEW",
        False,
    )
    assert event.payload == {
        "quantity": "0.01",
        "price": "50000",
        "venue": "sim-a",
        "routed": False,
    }


def test_same_client_order_id_in_process_then_replayed_not_duplicated(users):
    client = _client(users["trader"])
    first = _post(client, limit_order(client_order_id="again"))
    second = _post(client, limit_order(client_order_id="again"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert OrderEvent.objects.filter(order_id=first.json()["id"]).count() == 1


def _head(query: dict) -> str:
    return query["sql"][:6] if query["sql"] else "(prepared)"


def test_mark_then_ack_then_one_statement_and_four_round_trips(users):
    """The worker's side of the path, outside a test transaction as in a worker: the
    mark is one statement; the venue's answer goes through the order's row lock (the
    lock, one write of the order, its events and venue id, the commit)."""
    from orders import engine
    from orders.reports import ExecutionReport, ReportKind

    client = _client(users["trader"])
    r = _post(client, limit_order(client_order_id="acked", venue="sim-a"))
    assert r.status_code == 201, r.content
    order_id = r.json()["id"]
    # Act
    with CaptureQueriesContext(connection) as marked:
        assert mark_sent(order_id) is not None
    ack = ExecutionReport(kind=ReportKind.ACK, venue_order_id="v-acked", client_order_id="acked")
    with CaptureQueriesContext(connection) as acked:
        (result,) = engine.process(order_id, [ack])
    # Assert
    # (a statement the connection has prepared is logged without its text)
    assert [_head(q) for q in marked] in (["WITH o"], ["(prepared)"])
    assert result.applied
    heads = [_head(q) for q in acked]
    assert heads[0] == "BEGIN" and heads[-1] == "COMMIT" and len(heads) == 4, heads
    assert heads[1] in ("SELECT", "(prepared)") and heads[2] in ("WITH o", "(prepared)")
    order = Order.objects.get(pk=order_id)
    assert (order.status, order.venue_order_id, order.event_sequence) == ("ACCEPTED", "v-acked", 3)
