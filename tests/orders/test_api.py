"""The order REST API through real HTTP (uvicorn) against real PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from tests.conftest import limit_order

pytestmark = pytest.mark.django_db(transaction=True)


def _order_count() -> int:
    from orders.models import Order, OrderEvent

    return Order.objects.count() + OrderEvent.objects.count()


def test_submit_limit_order_then_created_pending_new(api):
    # Act
    r = api("trader").post("/api/v1/orders/", limit_order(client_order_id="t-1"))
    # Assert
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "PENDING_NEW"
    assert body["client_order_id"] == "t-1"
    assert body["quantity"] == "0.01"
    assert body["price"] == "50000"
    assert body["leaves_quantity"] == "0.01"
    assert body["filled_quantity"] == "0"
    assert body["venue"] == "sim-a"
    for key in (
        "id", "account", "symbol", "side", "type", "time_in_force", "venue_order_id",
        "average_price", "reason", "parent_id", "created_at", "updated_at",
    ):  # fmt: skip
        assert key in body


def test_submit_enqueues_submit_task_on_commit(api):
    import redis
    from django.conf import settings

    r = api("trader").post("/api/v1/orders/", limit_order(client_order_id="t-enq"))
    assert r.status_code == 201
    # on the queue of the order's venue (sim-a, routed), not a queue shared by all venues
    queued = redis.Redis.from_url(settings.REDIS_URL).lrange("oms.orders.sim-a", 0, -1)
    assert any(b"oms.orders.submit" in m and str(r.json()["id"]).encode() in m for m in queued)


def test_same_client_order_id_same_body_then_200_same_order(api):
    client = api("trader")
    first = client.post("/api/v1/orders/", limit_order(client_order_id="dup-1"))
    second = client.post("/api/v1/orders/", limit_order(client_order_id="dup-1"))
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    from orders.models import Order

    assert Order.objects.filter(client_order_id="dup-1").count() == 1


def test_same_client_order_id_other_body_then_409(api):
    client = api("trader")
    client.post("/api/v1/orders/", limit_order(client_order_id="dup-2"))
    r = client.post("/api/v1/orders/", limit_order(client_order_id="dup-2", quantity="0.02"))
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "CLIENT_ORDER_ID_CONFLICT"
    assert r.json()["error"]["field"] == "client_order_id"


def test_same_client_order_id_in_two_accounts_then_both_accepted_each_sees_its_own(api):
    # Arrange: trader trades DEMO, outsider trades HEDGE (issue 13, item 5: the second
    # was told 409, i.e. that another account had used the id)
    trader, outsider = api("trader"), api("outsider")
    # Act
    mine = trader.post("/api/v1/orders/", limit_order(client_order_id="shared-1"))
    theirs = outsider.post(
        "/api/v1/orders/", limit_order(client_order_id="shared-1", account="HEDGE")
    )
    # Assert
    assert mine.status_code == 201, mine.text
    assert theirs.status_code == 201, theirs.text
    assert mine.json()["id"] != theirs.json()["id"]
    for client, order in ((trader, mine.json()), (outsider, theirs.json())):
        listed = client.get("/api/v1/orders/", params={"client_order_id": "shared-1"}).json()
        assert [o["id"] for o in listed["results"]] == [order["id"]]
        assert order["client_order_id"] == "shared-1"
    # what the venue is sent: an id of the OMS's own, unique across accounts
    venue_ids = {mine.json()["venue_client_order_id"], theirs.json()["venue_client_order_id"]}
    assert len(venue_ids) == 2 and "shared-1" not in venue_ids


def test_same_client_order_id_in_two_accounts_then_replay_answers_own_account(api):
    trader, outsider = api("trader"), api("outsider")
    mine = trader.post("/api/v1/orders/", limit_order(client_order_id="shared-2")).json()
    outsider.post("/api/v1/orders/", limit_order(client_order_id="shared-2", account="HEDGE"))
    again = trader.post("/api/v1/orders/", limit_order(client_order_id="shared-2"))
    other = trader.post("/api/v1/orders/", limit_order(client_order_id="shared-2", price="49000"))
    assert again.status_code == 200 and again.json()["id"] == mine["id"]
    assert other.status_code == 409, other.text


def test_decimal_spelling_does_not_make_a_conflict(api):
    client = api("trader")
    client.post("/api/v1/orders/", limit_order(client_order_id="dup-3", quantity="0.01"))
    r = client.post("/api/v1/orders/", limit_order(client_order_id="dup-3", quantity="0.0100"))
    assert r.status_code == 200


BAD_INPUT = [
    ("negative quantity", {"quantity": "-1"}, "quantity"),
    ("zero quantity", {"quantity": "0"}, "quantity"),
    ("non-numeric quantity", {"quantity": "abc"}, "quantity"),
    ("NaN quantity", {"quantity": "NaN"}, "quantity"),
    ("infinite quantity", {"quantity": "Infinity"}, "quantity"),
    ("boolean quantity", {"quantity": True}, "quantity"),
    ("object quantity", {"quantity": {"a": 1}}, "quantity"),
    ("huge quantity", {"quantity": "1e40"}, "quantity"),
    ("negative price", {"price": "-5"}, "price"),
    ("non-numeric price", {"price": "x"}, "price"),
    ("price on market order", {"type": "market", "price": "50000"}, "price"),
    ("limit without price", {"price": None}, "price"),
    ("quantity off lot", {"quantity": "0.000001"}, "quantity"),
    ("price off tick", {"price": "50000.001"}, "price"),
    ("unknown symbol", {"symbol": "DOGE/USDT"}, "symbol"),
    ("unknown account", {"account": "NOPE"}, "account"),
    ("other member's account", {"account": "HEDGE"}, "account"),
    ("unknown venue", {"venue": "nowhere"}, "venue"),
    ("bad side", {"side": "hold"}, "side"),
    ("bad type", {"type": "stop"}, "type"),
    ("bad tif", {"time_in_force": "DAY"}, "time_in_force"),
    ("client id too long", {"client_order_id": "x" * 33}, "client_order_id"),
    ("client id odd chars", {"client_order_id": "a b/<c>"}, "client_order_id"),
    ("unknown field", {"colour": "blue"}, "colour"),
]


@pytest.mark.parametrize(("case", "change", "field"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_then_400_naming_field_and_nothing_written(api, case, change, field):
    body = limit_order()
    body.update(change)
    if change.get("price", "") is None:
        body.pop("price")
    r = api("trader").post("/api/v1/orders/", body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["field"] == field
    assert field in error["fields"]
    assert _order_count() == 0


def test_missing_fields_then_400_listing_them(api):
    r = api("trader").post("/api/v1/orders/", {})
    assert r.status_code == 400
    assert {"account", "symbol", "side", "type", "quantity"} <= set(r.json()["error"]["fields"])


def test_disabled_symbol_and_venue_then_400(api):
    from orders.models import Instrument
    from venues.models import Venue

    Instrument.objects.filter(symbol="ETH/USDT").update(enabled=False)
    Venue.objects.filter(name="sim-b").update(enabled=False)
    client = api("trader")
    r = client.post("/api/v1/orders/", limit_order(symbol="ETH/USDT", price="3000"))
    assert r.status_code == 400 and r.json()["error"]["field"] == "symbol"
    r = client.post("/api/v1/orders/", limit_order(venue="sim-b"))
    assert r.status_code == 400 and r.json()["error"]["field"] == "venue"
    assert _order_count() == 0


def test_malformed_json_and_non_object_body_then_400(api):
    client = api("trader")
    r = client.session.post(
        client.base + "/api/v1/orders/",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "PARSE_ERROR"
    r = client.post("/api/v1/orders/", [1, 2, 3])
    assert r.status_code == 400
    assert _order_count() == 0


def test_oversized_body_then_rejected_not_500(api):
    client = api("trader")
    body = limit_order(client_order_id="big")
    body["pad"] = "x" * 200_000
    r = client.post("/api/v1/orders/", body)
    assert r.status_code in (400, 413)
    assert "error" in r.json()
    assert _order_count() == 0


def test_unauthenticated_then_401_everywhere_but_healthz(api):
    anon = api(None)
    for path in ("/api/v1/orders/", "/api/v1/fills/", "/api/v1/positions/", "/api/v1/health/"):
        r = anon.get(path)
        assert r.status_code == 401, path
        assert r.json()["error"]["code"] == "NOT_AUTHENTICATED"
    assert anon.post("/api/v1/orders/", limit_order()).status_code == 401
    assert anon.get("/healthz").status_code == 200


def test_trader_cannot_see_other_accounts_orders_then_404(api):
    outsider = api("outsider")
    r = outsider.post("/api/v1/orders/", limit_order(account="HEDGE", client_order_id="h-1"))
    assert r.status_code == 201
    order_id = r.json()["id"]
    trader = api("trader")
    assert trader.get(f"/api/v1/orders/{order_id}/").status_code == 404
    assert trader.post(f"/api/v1/orders/{order_id}/cancel/").status_code == 404
    assert trader.post(f"/api/v1/orders/{order_id}/amend/", {"price": "1"}).status_code == 404
    assert order_id not in [o["id"] for o in trader.get("/api/v1/orders/").json()["results"]]
    # risk sees every account
    assert api("risk").get(f"/api/v1/orders/{order_id}/").status_code == 200


def test_order_detail_has_events_in_sequence_and_fills(api):
    client = api("trader")
    order = client.post("/api/v1/orders/", limit_order(client_order_id="ev-1")).json()
    client.post(f"/api/v1/orders/{order['id']}/cancel/")
    detail = client.get(f"/api/v1/orders/{order['id']}/").json()
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds == ["OrderCreated", "OrderCanceled"]
    assert [e["sequence"] for e in detail["events"]] == [1, 2]
    assert detail["status"] == "CANCELED"
    assert detail["fills"] == []


def test_list_filters(api):
    client = api("trader")
    client.post("/api/v1/orders/", limit_order(client_order_id="f-1"))
    client.post("/api/v1/orders/", limit_order(client_order_id="f-2", symbol="ETH/USDT",
                                                price="3000.00"))  # fmt: skip
    r = client.get("/api/v1/orders/", params={"symbol": "ETH/USDT"}).json()
    assert [o["client_order_id"] for o in r["results"]] == ["f-2"]
    r = client.get("/api/v1/orders/", params={"client_order_id": "f-1"}).json()
    assert r["count"] == 1
    r = client.get("/api/v1/orders/", params={"status": "PENDING_NEW", "account": "DEMO"}).json()
    assert r["count"] == 2


def test_cancel_twice_then_same_answer_and_terminal_cancel_409(api):
    client = api("trader")
    order = client.post("/api/v1/orders/", limit_order(client_order_id="c-1")).json()
    assert client.post(f"/api/v1/orders/{order['id']}/cancel/").status_code == 202
    again = client.post(f"/api/v1/orders/{order['id']}/cancel/")
    assert again.status_code == 202 and again.json()["status"] == "CANCELED"
    r = client.post(f"/api/v1/orders/{order['id']}/amend/", {"price": "49000.00"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "ORDER_STATE_CONFLICT"


def test_amend_bad_input_then_400(api):
    client = api("trader")
    order = client.post("/api/v1/orders/", limit_order(client_order_id="a-1")).json()
    r = client.post(f"/api/v1/orders/{order['id']}/amend/", {})
    assert r.status_code == 400
    r = client.post(f"/api/v1/orders/{order['id']}/amend/", {"quantity": "-1"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "quantity"


def test_cancel_all_pending_orders(api):
    client = api("trader")
    for i in range(3):
        client.post("/api/v1/orders/", limit_order(client_order_id=f"ca-{i}"))
    r = client.post("/api/v1/orders/cancel-all/", {"account": "DEMO"})
    assert r.status_code == 202 and r.json()["canceled"] == 3
    r = client.post("/api/v1/orders/cancel-all/", {"account": "HEDGE"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "account"


def test_auth_token_endpoint(api, web_server):
    import requests

    r = requests.post(
        web_server + "/api/v1/auth/token/",
        json={"username": "trader", "password": "trader-pw-123"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["token"].startswith("oms_")
    r = requests.post(
        web_server + "/api/v1/auth/token/",
        json={"username": "trader", "password": "wrong"},
        timeout=10,
    )
    assert r.status_code == 400 and "error" in r.json()


def test_schema_and_docs_served(api):
    client = api("trader")
    r = client.get("/api/schema/")
    assert r.status_code == 200 and b"/api/v1/orders/" in r.content
    assert client.get("/api/docs/").status_code == 200


def test_schema_and_docs_without_login_then_401(api):
    client = api(None)
    for path in ("/api/schema/", "/api/docs/"):
        r = client.get(path)
        assert r.status_code in (401, 403), (path, r.status_code)
        assert "/api/v1/orders/" not in r.text


def test_fills_and_positions_list_empty(api):
    client = api("trader")
    assert client.get("/api/v1/fills/").json()["results"] == []
    assert client.get("/api/v1/positions/").json()["results"] == []


def test_health_reports_database_redis_and_queues(api):
    r = api("admin").get("/api/v1/health/")
    body = r.json()
    assert body["database"]["status"] == "up"
    assert body["redis"]["status"] == "up"
    # the fixed queues and one per enabled venue
    assert set(body["queues"]) == {
        "oms.urgent", "oms.reports", "oms.recon", "oms.route", "oms.orders.sim-a",
        "oms.orders.sim-b",
    }  # fmt: skip
    # no workers run in this test: the queues are reported down and health degraded
    assert r.status_code == 503 and body["status"] == "degraded"
