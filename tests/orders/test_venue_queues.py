"""Each venue's calls have a queue of their own (omsweb/celery.py), and the outbox sweep
re-sends only a submit that is lost, not one waiting its turn (orders/tasks.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal as D

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from omsweb.celery import venue_queue
from orders import engine, tasks
from orders.domain.commands import SubmitOrder
from orders.models import Order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker():
    from omsweb.demo import ensure_reference_data

    ensure_reference_data()
    r = redis.Redis.from_url(settings.REDIS_URL)
    keys = ["oms.orders.sim-a", "oms.orders.sim-b"]
    r.delete(*keys)
    yield r
    r.delete(*keys)


def _queued(r: redis.Redis, queue: str) -> list[bytes]:
    return r.lrange(queue, 0, -1)


def _order(venue: str, *, age_s: float) -> Order:
    """A PENDING_NEW order at ``venue`` (its submit queued on commit), ``age_s`` old."""
    order = engine.execute(
        SubmitOrder(
            account="DEMO",
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            quantity=D("1"),
            price=D("100.00"),
            venue=venue,
        )
    ).order
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=age_s))
    redis.Redis.from_url(settings.REDIS_URL).delete(f"oms:sweep:outbox:{order.pk}")
    return order


def _tasks(messages: list[bytes]) -> list[tuple[str, str]]:
    """(task name, its arguments' repr) of each message in a queue."""
    return [
        (json.loads(m)["headers"]["task"], json.loads(m)["headers"]["argsrepr"]) for m in messages
    ]


def _holds(messages: list[bytes], order_id: int) -> bool:
    return ("oms.orders.submit", f"({order_id},)") in _tasks(messages)


def test_submit_when_venue_given_then_queued_on_that_venues_queue_only(broker):
    order = _order("sim-b", age_s=0)
    assert _holds(_queued(broker, "oms.orders.sim-b"), order.pk)
    assert not _queued(broker, "oms.orders.sim-a")


def test_order_task_sent_without_queue_then_routed_to_its_orders_venue(broker):
    order = _order("sim-b", age_s=0)
    broker.delete("oms.orders.sim-b")
    assert tasks.route_venue_task("oms.orders.resend", (order.pk,), {}, {}) == {
        "queue": "oms.orders.sim-b"
    }
    tasks.resend_order.apply_async((order.pk,))  # as a retry's follow-up sends it
    assert _tasks(_queued(broker, "oms.orders.sim-b")) == [("oms.orders.resend", f"({order.pk},)")]
    # an explicit queue wins; other tasks are routed by name
    assert tasks.route_venue_task("oms.orders.submit", (order.pk,), {}, {"queue": "x"}) is None
    assert tasks.route_venue_task("oms.urgent.cancel", (order.pk,), {}, {}) is None


def test_sweep_when_submit_waits_in_its_venue_queue_then_not_sent_again(broker):
    waiting = _order("sim-a", age_s=5)  # its task is still in sim-a's queue
    assert tasks.sweep_outbox.run() == 0
    assert [_holds([m], waiting.pk) for m in _queued(broker, venue_queue("sim-a"))] == [True]


def test_sweep_when_venue_queue_empty_then_lost_submit_sent_again_on_that_queue(broker):
    lost = _order("sim-b", age_s=5)
    broker.delete("oms.orders.sim-b")  # the message is gone (a broker that lost it)
    assert tasks.sweep_outbox.run() == 1
    assert _holds(_queued(broker, "oms.orders.sim-b"), lost.pk)
    # swept once: not again within the guard, however often the sweep runs
    assert tasks.sweep_outbox.run() == 0


def test_sweep_when_order_older_than_any_queue_wait_then_sent_again(broker):
    old = _order("sim-a", age_s=tasks.OUTBOX_LOST_S + 1)
    _order("sim-a", age_s=5)  # the queue is not empty
    assert tasks.sweep_outbox.run() == 1
    assert sum(_holds([m], old.pk) for m in _queued(broker, "oms.orders.sim-a")) == 2


def test_sweep_when_order_younger_than_outbox_age_then_left_alone(broker):
    _order("sim-a", age_s=0)
    broker.delete("oms.orders.sim-a")
    assert tasks.sweep_outbox.run() == 0


def test_sweep_when_parent_not_routed_then_its_route_task_sent_again(broker):
    from omsweb.redis_client import client
    from tests.market import publish_book

    keys = publish_book(client(), "sim-a", "BTC/USDT", "100")  # a venue may trade it
    broker.delete("oms.route")
    try:
        parent = engine.execute(
            SubmitOrder(
                account="DEMO",
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                quantity=D("1"),
                price=D("100.00"),
            )  # fmt: skip
        ).order
    finally:
        client().delete(*keys)
    assert parent.venue_id is None
    assert _tasks(_queued(broker, "oms.route")) == [("oms.route.parent", f"({parent.pk},)")]
    broker.delete("oms.route")  # lost
    Order.objects.filter(pk=parent.pk).update(created_at=timezone.now() - timedelta(seconds=5))
    broker.delete(f"oms:sweep:outbox:{parent.pk}")
    assert tasks.sweep_outbox.run() == 1
    assert _tasks(_queued(broker, "oms.route")) == [("oms.route.parent", f"({parent.pk},)")]
    broker.delete("oms.route")


def test_sweep_when_working_parent_has_no_child_open_then_next_round_sent_again(broker):
    from omsweb.redis_client import client
    from tests.market import publish_book

    keys = publish_book(client(), "sim-a", "BTC/USDT", "100")
    try:
        parent = engine.execute(
            SubmitOrder(
                account="DEMO",
                symbol="BTC/USDT",
                side="buy",
                type="limit",
                quantity=D("1"),
                price=D("100.00"),
            )  # fmt: skip
        ).order
    finally:
        client().delete(*keys)
    broker.delete("oms.route", f"oms:sweep:outbox:{parent.pk}")
    # its round ran, its children ended, and the next round's task was lost (a test
    # shortcut to that state: the engine wrote it through rounds in production)
    old = timezone.now() - timedelta(seconds=tasks.OUTBOX_LOST_S + 1)
    Order.objects.filter(pk=parent.pk).update(status="ACCEPTED", updated_at=old, created_at=old)
    assert tasks.sweep_outbox.run() == 1
    assert _tasks(_queued(broker, "oms.route")) == [("oms.route.parent", f"({parent.pk},)")]
    broker.delete("oms.route")
