"""The broker is not a back door (issue 13, item 1): a process that is not the OMS sends
``oms.reports.apply`` with a made-up fill for a resting order straight to the broker.

Without the password Redis does not even answer. With it (as if it leaked), the message
reaches a real order worker, which refuses it because its HMAC does not hold (none,
altered after signing, or signed with another key): the order stays as the venue has
it, and each refusal is logged at WARNING as ``event=task_message_refused``."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from decimal import Decimal as D
from typing import Any

import pytest
import redis
from django.test import override_settings
from kombu import Connection

from omsweb import task_auth
from tests.system.conftest import order_status, wait_for

pytestmark = [pytest.mark.system, pytest.mark.django_db(transaction=False)]

_ids = itertools.count(1)
TASK = "oms.reports.apply"


def _message(order_id: int, report: dict[str, Any], *, sign: bool) -> tuple[dict, Any, dict]:
    from omsweb.celery import app

    msg = app.amqp.as_task_v2(str(uuid.uuid4()), TASK, args=(order_id, report), kwargs={})
    if sign:
        task_auth.sign_message(sender=TASK, body=msg.body, headers=msg.headers)
    return msg.headers, msg.body, msg.properties


def _publish(stack, headers: dict, body: Any, properties: dict) -> str:
    """Straight onto the reports queue with kombu, as Celery would put it there."""
    with Connection(stack.env["REDIS_URL"]) as conn:
        conn.Producer().publish(
            body,
            exchange="",
            routing_key="oms.reports",
            headers=headers,
            serializer="json",
            retry=True,
            **properties,
        )
    return headers["id"]


def _refused(stack, task_id: str) -> str | None:
    # execution reports have a worker of their own (oms.reports)
    log = (stack.logdir / "worker-reports.log").read_text(errors="replace")
    line = f"event=task_message_refused task={TASK} id={task_id}"
    return next((x for x in log.splitlines() if line in x), None)


def test_forged_fill_report_when_sent_to_the_broker_then_refused_and_order_unchanged(stack):
    api = stack.api()
    # Arrange: a resting order, working at the venue
    bid = D(stack.sim_get("/sim/state", depth=5)["books"]["BTCUSDT"]["bids"][0][0])
    r = api.post(
        "/api/v1/orders/",
        {
            "account": "DEMO",
            "symbol": "BTC/USDT",
            "venue": "sim-a",
            "side": "buy",
            "type": "limit",
            "quantity": "0.002",
            "price": str((bid * D("0.9")).quantize(D("0.01"))),
            "client_order_id": f"forged-{next(_ids)}-{uuid.uuid4().hex[:6]}",
        },
    )
    assert r.status_code == 201, r.text
    order = wait_for(order_status(api, r.json()["id"], "ACCEPTED"), timeout=15)
    forged = {
        "kind": "fill",
        "source": "stream",
        "venue_order_id": order["venue_order_id"],
        "trade_id": f"made-up-{uuid.uuid4().hex[:8]}",
        "quantity": "0.002",
        "price": order["price"],
        "fee": "0",
        "fee_currency": "USDT",
    }

    # Act 1: no password, no broker
    kwargs = redis.Redis.from_url(stack.env["REDIS_URL"]).connection_pool.connection_kwargs
    port = kwargs["port"]
    # the embedded Redis has a password; a production REDIS_URL (CI's second pass: the
    # machine's own Redis) brings whatever its operator set, so only the embedded one is held
    embedded = bool(kwargs.get("password"))
    with pytest.raises(redis.AuthenticationError) if embedded else contextlib.nullcontext():
        redis.Redis(host="127.0.0.1", port=port).ping()

    # Act 2: with the broker's password, three forged messages
    sent = []
    sent.append(_publish(stack, *_message(order["id"], forged, sign=False)))  # unsigned
    headers, body, props = _message(order["id"], {**forged, "quantity": "0.000001"}, sign=True)
    body[0][1]["quantity"] = "0.002"  # signed for a tiny fill, altered after signing
    sent.append(_publish(stack, headers, body, props))
    with override_settings(OMS_TASK_KEY="a-key-the-oms-does-not-hold"):
        sent.append(_publish(stack, *_message(order["id"], forged, sign=True)))

    # Assert: each one refused by the order worker, with a WARNING
    for task_id in sent:
        line = wait_for(lambda tid=task_id: _refused(stack, tid), timeout=20)
        assert " WARNING " in line
    # ... and nothing applied: the order is as the venue has it
    after = api.get(f"/api/v1/orders/{order['id']}/").json()
    assert after["status"] == "ACCEPTED"
    assert D(after["filled_quantity"]) == 0
    assert after["fills"] == []
    assert [e["kind"] for e in after["events"]] == [e["kind"] for e in order["events"]]

    api.post(f"/api/v1/orders/{order['id']}/cancel/")
    wait_for(order_status(api, order["id"], "CANCELED"), timeout=15)
