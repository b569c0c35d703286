"""The submit task prepares the venue request while the order's mark commits
(orders/pipeline.py, ``_submit_while_marking``): the request leaves only after the mark
is committed, and only if it is still the order's request; otherwise nothing is sent
and a marked order goes out the usual way. Real PostgreSQL and Redis; a scripted venue
adapter behind the real guard."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal as D

import psycopg
import pytest
from django.db import connection

from orders import pipeline, services
from orders.models import Order, OrderEvent
from venues.base import OrderRequest, VenueAdapter, VenueOrder, VenueOrderStatus
from venues.breaker import BreakerConfig, CircuitBreaker
from venues.guard import GuardedAdapter
from venues.ratelimit import Pool, RateLimiter

pytestmark = pytest.mark.django_db(transaction=True)  # outside a transaction, as a worker


class Venue(VenueAdapter):
    """Records what left (after ``before_send``), and the order's status as another
    connection saw it at that moment."""

    name = "scripted"

    def __init__(self, order_id: int) -> None:
        self.order_id = order_id
        self.sent: list[OrderRequest] = []
        self.committed_status: list[str] = []
        self.prepared = 0

    def submit_order(self, request, *, before_send=None):  # noqa: ANN001, ANN201
        self.prepared += 1
        if before_send is not None:
            before_send()  # may withdraw: nothing is sent
        with psycopg.connect(_dsn()) as other:  # what is committed, not what we wrote
            (status,) = other.execute(
                "SELECT status FROM orders_order WHERE id = %s", [self.order_id]
            ).fetchone()
        self.committed_status.append(status)
        self.sent.append(request)
        return VenueOrder(
            venue_order_id=f"v{len(self.sent)}",
            client_order_id=request.client_order_id,
            symbol=request.symbol,
            side=request.side,
            type=request.type,
            status=VenueOrderStatus.NEW,
            quantity=request.quantity,
            price=request.price,
        )

    def last_used_weight(self) -> int | None:
        return None

    def capabilities(self):  # noqa: ANN201
        raise NotImplementedError

    def cancel_order(self, **kwargs):  # noqa: ANN003, ANN201
        raise NotImplementedError

    def amend_order(self, **kwargs):  # noqa: ANN003, ANN201
        raise NotImplementedError

    def fetch_order(self, **kwargs):  # noqa: ANN003, ANN201
        raise NotImplementedError

    def fetch_open_orders(self, symbol=None):  # noqa: ANN001, ANN201
        raise NotImplementedError

    def fetch_trades(self, **kwargs):  # noqa: ANN003, ANN201
        raise NotImplementedError

    def fetch_order_book(self, symbol, depth=10):  # noqa: ANN001, ANN201
        raise NotImplementedError

    def fetch_balances(self):  # noqa: ANN201
        raise NotImplementedError


def _dsn() -> str:
    s = connection.settings_dict
    host = f" host={s['HOST']}" if s["HOST"] else ""
    port = f" port={s['PORT']}" if s.get("PORT") else ""
    password = f" password={s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"dbname={s['NAME']} user={s['USER']}{host}{port}{password}"


@pytest.fixture
def order(transactional_db):
    from tests.orders.test_rows import _new, _refdata

    return _new(_refdata())


@pytest.fixture
def venue(order, monkeypatch):
    """The scripted venue behind a real guard, as the one this process used last for
    the order's venue (and the one its venue row maps to)."""
    from omsweb.redis_client import client

    inner = Venue(order.pk)
    name = f"test-{uuid.uuid4().hex[:8]}"
    guard = GuardedAdapter(
        inner,
        venue_id=order.venue_id,
        limiter=RateLimiter(client(), name, (Pool("weight", 1000, 60.0),)),
        breaker=CircuitBreaker(client(), name, BreakerConfig()),
    )
    monkeypatch.setattr(pipeline, "last_guard", lambda venue_id: guard)
    monkeypatch.setattr(pipeline, "guarded_adapter", lambda venue: guard)
    monkeypatch.setattr(pipeline, "_adapter", lambda order: guard)
    yield inner
    for key in client().scan_iter(f"oms:*:{name}*"):
        client().delete(key)


def test_request_leaves_only_after_the_mark_is_committed(order, venue):
    outcome = pipeline.submit(order.pk, prepared=pipeline.prepared_request(order))

    assert outcome.done
    assert venue.committed_status == ["SUBMITTED"]  # durable before anything left
    assert venue.sent == [pipeline.request_for(order)]
    order.refresh_from_db()
    assert (order.status, order.venue_order_id) == ("ACCEPTED", "v1")
    kinds = [e.kind for e in OrderEvent.objects.filter(order=order).order_by("sequence")]
    assert kinds == ["OrderCreated", "OrderSubmitted", "OrderAccepted"]


def test_order_changed_since_queued_then_prepared_request_withdrawn_and_fresh_one_sent(
    order, venue
):
    prepared = pipeline.prepared_request(order)
    Order.objects.filter(pk=order.pk).update(price=D("99.5"))

    outcome = pipeline.submit(order.pk, prepared=prepared)

    assert outcome.done
    assert venue.prepared == 2  # the queued copy, withdrawn; then the order as marked
    assert [r.price for r in venue.sent] == [D("99.5")]
    order.refresh_from_db()
    assert order.status == "ACCEPTED"


def test_order_canceled_before_pickup_then_nothing_sent(order, venue):
    prepared = pipeline.prepared_request(order)
    services.order_cancel(order_id=order.pk)

    outcome = pipeline.submit(order.pk, prepared=prepared)

    assert outcome.done and outcome.detail == "not pending new"
    assert venue.prepared == 1 and venue.sent == []
    order.refresh_from_db()
    assert order.status == "CANCELED"


def test_mark_held_up_by_a_lock_then_withdrawn_and_sent_once_marked(order, venue, monkeypatch):
    monkeypatch.setattr(pipeline, "GATE_WAIT_S", 0.1)
    locked, release = threading.Event(), threading.Event()

    def hold_the_row() -> None:
        with psycopg.connect(_dsn()) as other, other.transaction():
            other.execute("SELECT 1 FROM orders_order WHERE id = %s FOR UPDATE", [order.pk])
            locked.set()
            release.wait(5)

    holder = threading.Thread(target=hold_the_row)
    holder.start()
    assert locked.wait(5)
    threading.Timer(0.4, release.set).start()
    started = time.monotonic()

    outcome = pipeline.submit(order.pk, prepared=pipeline.prepared_request(order))

    holder.join(5)
    assert outcome.done
    assert time.monotonic() - started >= 0.35  # it did wait for the lock
    assert venue.prepared == 2 and len(venue.sent) == 1  # withdrawn, then sent once
    assert venue.committed_status == ["SUBMITTED"]
    order.refresh_from_db()
    assert order.status == "ACCEPTED"


def test_without_a_prepared_request_the_order_is_marked_then_sent(order, venue):
    outcome = pipeline.submit(order.pk)

    assert outcome.done
    assert venue.prepared == 1 and venue.committed_status == ["SUBMITTED"]
    order.refresh_from_db()
    assert order.status == "ACCEPTED"


@pytest.mark.parametrize(
    "prepared",
    [{"venue": "x"}, {"venue": 1, "quantity": "abc"}, ["not", "a", "dict"]],
)
def test_malformed_prepared_request_then_marked_then_sent(order, venue, prepared):
    outcome = pipeline.submit(order.pk, prepared=prepared)

    assert outcome.done and venue.prepared == 1
    order.refresh_from_db()
    assert order.status == "ACCEPTED"
