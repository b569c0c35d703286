"""From the engine's events to FIX messages, in process: the report listener's stream
records (fixgw/listener.py), the FIX handlers (fixgw/entry.py) and the replies the
gateway's pump builds (fixgw/reports.py). The real engine, database and Redis; the
scripted venue of tests/orders/engine_harness.py; no QuickFIX."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from fixgw import entry
from fixgw.listener import stream_key
from fixgw.mapping import OrderFacts
from fixgw.reports import replies_for
from omsweb.redis_client import client
from orders import engine
from orders.domain.commands import CancelOrder
from tests.orders.engine_harness import installed, reject

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def harness(transactional_db, monkeypatch):
    yield from installed(monkeypatch)


@pytest.fixture
def trader(harness):
    from django.contrib.auth.models import Group, User

    from orders.models import Account

    user = User.objects.create_user(username="fix-trader", password="pw-123-fix")
    user.groups.add(Group.objects.get(name="trader"))
    Account.objects.get(code="DEMO").members.add(user)
    client().delete(stream_key(user.pk))
    yield user
    client().delete(stream_key(user.pk))


def records(user) -> list[OrderFacts]:
    entries = client().xrange(stream_key(user.pk))
    return [
        OrderFacts.from_record({k.decode(): v.decode() for k, v in raw.items()})
        for _, raw in entries
    ]


def sent(user) -> list[dict[int, str]]:
    """What the pump would send, in order, as ``{tag: value}`` with 35 the MsgType."""
    out = []
    for f in records(user):
        for msg_type, body in replies_for(f):
            out.append({35: msg_type, **dict(body)})
    return out


def working(harness, user, cl="c-1"):
    order = harness.submit(user_id=user.pk, client_order_id=cl, source="fix")
    harness.run_queued()
    return harness.reload(order)


def cancel_fields(cl: str, orig: str) -> dict[int, str]:
    return {11: cl, 41: orig, 55: "BTC/USDT", 54: "1", 38: "0.01"}


def test_order_of_a_user_then_pending_new_and_new_in_their_stream(harness, trader):
    working(harness, trader)

    msgs = sent(trader)

    assert [(m[150], m[39], m[11]) for m in msgs] == [("A", "A", "c-1"), ("0", "0", "c-1")]
    assert [f.kind for f in records(trader)] == ["OrderCreated", "OrderAccepted"]


def test_order_without_a_user_then_nothing_recorded(harness, trader):
    harness.submit(client_order_id="router-child")  # the OMS's own (no user)
    harness.run_queued()
    assert records(trader) == []


def test_fix_cancel_then_pending_cancel_and_canceled_carry_the_request_ids(harness, trader):
    order = working(harness, trader)

    assert entry.cancel(cancel_fields("cx-1", "c-1"), user=trader) == []
    harness.run_queued()

    msgs = sent(trader)[2:]
    assert [(m[150], m[11], m[41]) for m in msgs] == [("6", "cx-1", "c-1"), ("4", "cx-1", "c-1")]
    assert harness.reload(order).status == "CANCELED"


def test_cancel_refused_by_the_venue_then_order_cancel_reject(harness, trader):
    working(harness, trader)
    harness.venue.on_cancel(reject("too late to cancel"))

    entry.cancel(cancel_fields("cx-2", "c-1"), user=trader)
    harness.run_queued()

    refused = sent(trader)[-1]
    assert refused[35] == "9" and refused[434] == "1" and refused[39] == "0"
    assert (refused[11], refused[41]) == ("cx-2", "c-1")


def test_cancel_unknown_or_done_then_reject_with_reason(harness, trader):
    order = working(harness, trader)
    ((kind, body),) = entry.cancel(cancel_fields("cx-3", "nope"), user=trader)
    assert kind == "9" and dict(body)[102] == "1"
    engine.execute(CancelOrder(order_id=order.pk))
    ((kind, body),) = entry.cancel(cancel_fields("cx-4", "c-1"), user=trader)
    assert dict(body)[102] == "3"  # a cancel is already pending
    harness.run_queued()
    ((kind, body),) = entry.cancel(cancel_fields("cx-5", "c-1"), user=trader)
    assert dict(body)[102] == "0" and "CANCELED: too late" in dict(body)[58]


def test_replace_then_the_order_is_known_by_the_new_clordid(harness, trader):
    order = working(harness, trader)
    fields = {11: "r-1", 41: "c-1", 55: "BTC/USDT", 54: "1", 38: "0.02", 40: "2", 44: "60000"}

    assert entry.replace(fields, user=trader) == []
    harness.run_queued()

    msgs = sent(trader)[2:]
    assert [(m[150], m[11], m[41], m[38]) for m in msgs] == [
        ("E", "r-1", "c-1", "0.01"), ("5", "r-1", "c-1", "0.02"),
    ]  # fmt: skip
    assert harness.reload(order).quantity == D("0.02")
    ((_, status),) = entry.status({11: "r-1", 55: "BTC/USDT", 54: "1"}, user=trader)
    assert (dict(status)[150], dict(status)[11], dict(status)[37]) == ("I", "r-1", str(order.pk))
    # a later change names the order by its new id
    entry.cancel(cancel_fields("cx-9", "r-1"), user=trader)
    assert sent(trader)[-1][41] == "r-1"


def test_new_order_duplicate_and_bad_input_then_rejected_at_once(harness, trader):
    fields = {11: "d-1", 1: "DEMO", 55: "BTC/USDT", 54: "1", 38: "0.01", 40: "2", 44: "60000"}
    ((_, pending_new),) = entry.new_order(fields, user=trader)  # at once, not via the stream
    assert (dict(pending_new)[150], dict(pending_new)[17]) == ("A", sent(trader)[0][17])
    ((_, dup),) = entry.new_order(fields, user=trader)
    assert (dict(dup)[150], dict(dup)[103]) == ("8", "6")
    ((_, again),) = entry.new_order({**fields, 97: "Y"}, user=trader)  # PossResend
    assert dict(again)[150] == "I"
    ((_, other),) = entry.new_order({**fields, 11: "d-2", 1: "HEDGE"}, user=trader)
    assert dict(other)[58] == "Account (1): unknown account 'HEDGE'"  # not theirs


def test_new_order_denied_by_risk_then_rejected_at_once_with_the_reason(harness, trader):
    fields = {11: "big-1", 1: "DEMO", 55: "BTC/USDT", 54: "1", 38: "150", 40: "2", 44: "60000"}
    ((_, rejected),) = entry.new_order(fields, user=trader)
    body = dict(rejected)
    assert (body[150], body[39], body[103]) == ("8", "8", "3")
    assert "MAX_ORDER_QUANTITY" in body[58] and body[37] != "NONE"
    assert body[17] == sent(trader)[0][17]  # the stream's record: the same ExecID
