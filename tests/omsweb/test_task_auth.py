"""Task messages carry an HMAC; a worker refuses one that does not hold (issue 13,
item 1). In process: a message built and signed as Celery publishes it, then read back
as a worker does (JSON through kombu); tests/system/test_broker_auth.py sends them
through the real broker to real workers."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Any

import pytest
from celery.app.task import Context
from django.test import override_settings
from kombu.utils import json as kombu_json

from omsweb import task_auth
from omsweb.celery import app

FILL = {"kind": "fill", "venue_order_id": "v1", "trade_id": "t1", "quantity": "0.5", "price": "100"}


def _published(name: str = "oms.reports.apply", args: tuple = (7, FILL), **headers: Any):
    """(headers, body) of a message as an OMS process publishes it: signed."""
    task_id = str(uuid.uuid4())
    msg = app.amqp.as_task_v2(task_id, name, args=args, kwargs={})
    msg.headers.update(headers)
    task_auth.sign_message(sender=name, body=msg.body, headers=msg.headers)
    return msg.headers, msg.body


def _received(headers: dict, body: Any) -> Context:
    """The request a worker builds from the message (after JSON on the wire)."""
    headers = kombu_json.loads(kombu_json.dumps(headers))
    args, kwargs, embed = kombu_json.loads(kombu_json.dumps(body))
    return Context(dict(headers, **embed), args=args, kwargs=kwargs, called_directly=False)


def test_signed_message_when_received_unchanged_then_accepted():
    headers, body = _published(oms_enqueued_at=1733480000.123456)
    assert task_auth.refusal("oms.reports.apply", _received(headers, body)) is None


def test_message_when_decimal_arguments_then_signature_survives_the_wire():
    headers, body = _published(args=(7, {"quantity": Decimal("0.10")}))
    assert task_auth.refusal("oms.reports.apply", _received(headers, body)) is None


def test_message_when_unsigned_then_refused():
    headers, body = _published()
    del headers[task_auth.SIGNATURE_HEADER]
    assert task_auth.refusal("oms.reports.apply", _received(headers, body)) == "unsigned"


@pytest.mark.parametrize(
    "alter",
    [
        pytest.param(lambda h, b: b[0][1].update(quantity="5"), id="fill quantity"),
        pytest.param(lambda h, b: b[0].__setitem__(0, 8), id="order id"),
        pytest.param(lambda h, b: h.update(id=str(uuid.uuid4())), id="task id"),
        pytest.param(lambda h, b: h.update(retries=5), id="retries"),
        pytest.param(lambda h, b: h.update(oms_enqueued_at=1.0), id="oms header"),
        pytest.param(
            lambda h, b: b[2].update(callbacks=[{"task": "oms.urgent.cancel", "args": [9]}]),
            id="callback added",
        ),
    ],
)
def test_signed_message_when_altered_then_refused(alter):
    headers, body = _published(oms_enqueued_at=1733480000.5)
    body = (list(body[0]), dict(body[1]), dict(body[2]))
    body[0][1] = dict(body[0][1])
    alter(headers, body)
    assert task_auth.refusal("oms.reports.apply", _received(headers, body)) == "bad signature"


def test_signed_message_when_run_as_another_task_then_refused():
    headers, body = _published(name="oms.orders.submit", args=(7,))
    assert task_auth.refusal("oms.urgent.cancel", _received(headers, body)) == "bad signature"


def test_message_when_signed_with_another_key_then_refused():
    with override_settings(OMS_TASK_KEY="not-the-oms-key"):
        headers, body = _published()
    assert task_auth.refusal("oms.reports.apply", _received(headers, body)) == "bad signature"


def test_task_when_message_refused_then_not_run_and_warning_logged(caplog):
    from orders.tasks import apply_report

    headers, body = _published()
    headers[task_auth.SIGNATURE_HEADER] = "0" * 64
    request = _received(headers, body)
    apply_report.push_request(**vars(request))
    try:
        with caplog.at_level(logging.WARNING, logger="omsweb.task_auth"):
            # no database access allowed here: the step must not run at all
            result = apply_report(*request.args)
    finally:
        apply_report.pop_request()
    assert result == task_auth.REFUSED
    assert f"event=task_message_refused task=oms.reports.apply id={headers['id']}" in caplog.text
    assert "reason=bad_signature" in caplog.text


def test_every_oms_task_when_registered_then_checked():
    import orders.tasks  # noqa: F401 - registers the tasks
    import risk.tasks  # noqa: F401

    oms_tasks = {name: t for name, t in app.tasks.items() if name.startswith("oms.")}
    assert "oms.reports.apply" in oms_tasks
    assert all(isinstance(t, task_auth.AuthenticatedTask) for t in oms_tasks.values())
