"""omsweb/realtime.py: events leave only after commit, numbered per stream, cheaply, with
the payloads the blotter renders. Against the real Redis channel layer."""

from __future__ import annotations

import asyncio
import statistics
import time
from decimal import Decimal as D

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from omsweb import realtime

pytestmark = pytest.mark.django_db(transaction=True)


def _drain(groups: list[str], action, *, expect: int, timeout: float = 5.0) -> list[dict]:
    """Join ``groups``, run ``action`` (sync, in a thread), collect ``expect`` events."""

    async def scenario() -> list[dict]:
        from asgiref.sync import sync_to_async

        layer = get_channel_layer()
        channel = await layer.new_channel()
        for group in groups:
            await layer.group_add(group, channel)
        try:
            await sync_to_async(action, thread_sensitive=False)()
            events: list[dict] = []
            deadline = time.monotonic() + timeout
            while len(events) < expect:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    message = await asyncio.wait_for(layer.receive(channel), left)
                except TimeoutError:
                    break
                assert message["type"] == realtime.GROUP_MESSAGE_TYPE
                events.extend(message["events"])
            if expect == 0:  # make sure nothing else comes
                try:
                    message = await asyncio.wait_for(layer.receive(channel), 0.3)
                    events.extend(message["events"])
                except TimeoutError:
                    pass
            return events
        finally:
            for group in groups:
                await layer.group_discard(group, channel)

    return async_to_sync(scenario)()


def _seq(stream: str) -> int:
    from omsweb.redis_client import client

    return int(client().get(realtime.seq_key(stream)) or 0)


def test_publish_in_transaction_then_sent_only_after_commit():
    group = realtime.account_group(9101)

    def commit():
        with transaction.atomic():
            realtime.publish_on_commit("order.updated", account_id=9101, id=1, status="ACCEPTED")
            assert realtime.flush(1.0)
            issued_inside = realtime._sender()._issued
        assert realtime._sender()._issued == issued_inside + 1  # queued at commit, not before
        assert realtime.flush(2.0)

    events = _drain([group], commit, expect=1)
    assert [e["type"] for e in events] == ["order.updated"]
    assert events[0]["data"] == {"id": 1, "status": "ACCEPTED"}
    assert events[0]["account_id"] == 9101 and events[0]["stream"] == "account:9101"


def test_publish_in_rolled_back_transaction_then_nothing_sent():
    group = realtime.account_group(9102)

    def rollback():
        with pytest.raises(RuntimeError), transaction.atomic():
            realtime.publish_on_commit("order.updated", account_id=9102, id=2)
            raise RuntimeError("boom")
        assert realtime.flush(2.0)

    assert _drain([group], rollback, expect=0) == []


def test_events_numbered_contiguously_per_stream():
    start_a, start_b, start_g = _seq("account:9103"), _seq("account:9104"), _seq("global")

    def burst():
        for i in range(3):
            realtime.publish("order.updated", account_id=9103, data={"i": i})
        realtime.publish("fill.created", account_id=9104, data={"i": 0})
        realtime.publish("venue.status", account_id=None, data={"venue": "sim-a"})
        realtime.publish("order.updated", account_id=9104, data={"i": 1})
        assert realtime.flush(2.0)

    groups = [realtime.account_group(9103), realtime.account_group(9104), "blotter.global"]
    events = _drain(groups, burst, expect=6)
    by_stream: dict[str, list[int]] = {}
    for e in events:
        by_stream.setdefault(e["stream"], []).append(e["seq"])
    assert by_stream["account:9103"] == [start_a + 1, start_a + 2, start_a + 3]
    assert by_stream["account:9104"] == [start_b + 1, start_b + 2]
    assert by_stream["global"][-1] == _seq("global") and by_stream["global"][0] > start_g
    assert [e["data"]["i"] for e in events if e["stream"] == "account:9103"] == [0, 1, 2]


def test_payload_decimals_and_datetimes_become_strings():
    from django.utils import timezone

    now = timezone.now()
    group = realtime.account_group(9105)

    def publish():
        realtime.publish_on_commit(
            "position.updated", account_id=9105, quantity=D("1.2500"), at=now, tags=("a",)
        )
        assert realtime.flush(2.0)

    (event,) = _drain([group], publish, expect=1)
    assert event["data"] == {"quantity": "1.25", "at": now.isoformat(), "tags": ["a"]}


def test_payload_with_an_object_then_type_error_in_the_caller():
    with pytest.raises(TypeError, match="not JSON-like"):
        realtime.publish_on_commit("order.updated", account_id=1, order=object())


def test_event_type_without_namespace_then_value_error():
    with pytest.raises(ValueError, match="namespaced"):
        realtime.publish_on_commit("updated", account_id=1)


def test_fill_applied_then_order_fill_and_position_events_carry_full_payloads(refdata):
    from orders import engine
    from orders.models import Account, Instrument, Order
    from orders.reports import ExecutionReport, ReportKind
    from venues.models import Venue

    account = Account.objects.get(code="DEMO")
    order = Order.objects.create(
        client_order_id="rt-fill-1",
        venue_client_order_id="rt-fill-1",
        account=account,
        instrument=Instrument.objects.get(symbol="BTC/USDT"),
        side="buy",
        type="limit",
        quantity=D("0.5"),
        price=D("100.00"),
        venue=Venue.objects.get(name="sim-a"),
        status="SUBMITTED",
        request_fingerprint="x",
    )

    def apply():
        engine.process(
            order.pk,
            [
                ExecutionReport(kind=ReportKind.ACK, venue_order_id="v-rt-1"),
                ExecutionReport(
                    kind=ReportKind.FILL,
                    venue_order_id="v-rt-1",
                    trade_id="t-rt-1",
                    quantity=D("0.5"),
                    price=D("99.50"),
                ),
            ],
        )
        assert realtime.flush(2.0)

    events = _drain([realtime.account_group(account.pk)], apply, expect=4)
    assert [e["type"] for e in events] == [
        "order.updated",
        "position.updated",
        "fill.created",
        "order.updated",
    ]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + 4))
    accepted, position, fill, filled = (e["data"] for e in events)
    assert accepted["status"] == "ACCEPTED" and filled["status"] == "FILLED"
    assert filled["version"] > accepted["version"]
    assert filled["average_price"] == "99.5" and filled["leaves_quantity"] == "0"
    assert filled["account"] == "DEMO" and filled["symbol"] == "BTC/USDT"
    assert fill["venue_trade_id"] == "t-rt-1" and fill["client_order_id"] == "rt-fill-1"
    assert fill["venue"] == "sim-a" and fill["price"] == "99.5"
    assert position["account"] == "DEMO" and position["quantity"] == "0.5"


def test_publish_is_cheap_on_the_calling_thread():
    """The order path only queues; sending happens on the process's sender thread.

    Measured here: the caller's cost per event, and (for comparison, printed) what
    ``async_to_sync(group_send)`` per event costs, which builds a new event loop and a
    new Redis connection every time."""
    realtime.publish("order.updated", account_id=9106, data={"warm": True})
    assert realtime.flush(2.0)
    costs = []
    for i in range(2000):
        started = time.perf_counter()
        realtime.publish("order.updated", account_id=9106, data={"id": i, "status": "FILLED"})
        costs.append(time.perf_counter() - started)
    assert realtime.flush(5.0)
    layer = get_channel_layer()
    naive = []
    for i in range(20):
        started = time.perf_counter()
        async_to_sync(layer.group_send)(
            realtime.account_group(9106), {"type": realtime.GROUP_MESSAGE_TYPE, "events": [i]}
        )
        naive.append(time.perf_counter() - started)
    p50 = statistics.median(costs) * 1e6
    print(
        f"\npublish(): p50 {p50:.1f} us, p99 {sorted(costs)[1980] * 1e6:.1f} us; "
        f"async_to_sync(group_send): p50 {statistics.median(naive) * 1e3:.2f} ms"
    )
    assert p50 < 100  # microseconds; typically ~3


def test_fill_pushed_then_fill_to_push_latency_observed_from_its_execution_time():
    from prometheus_client import REGISTRY

    def observed() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("oms_fill_push_seconds_count") or 0.0
        return count, REGISTRY.get_sample_value("oms_fill_push_seconds_sum") or 0.0

    sender = realtime.Sender()
    executed = time.time() - 2.0  # the venue executed it two seconds ago
    before = observed()
    try:
        sender.publish(
            "fill.created",
            account_id=424242,
            data={"executed_at": realtime._jsonable(_utc(executed)), "created_at": "x"},
        )
        sender.publish("order.updated", account_id=424242, data={"id": 1})  # not a fill
        assert sender.flush(5.0)
    finally:
        sender.close()
    count, total = observed()
    assert count == before[0] + 1
    assert 2.0 <= total - before[1] < 10.0


def _utc(ts: float):
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, tz=dt.UTC)
