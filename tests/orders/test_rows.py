"""The order path's one-statement reads and writes (orders/rows.py) against real
PostgreSQL: they must give exactly what the ORM would, and keep the lifecycle's rules."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.db import connection, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from orders import rows, services
from orders.models import Order, OrderEvent, VenueOrderRef
from orders.reports import ExecutionReport, ReportKind

pytestmark = pytest.mark.django_db


def _refdata() -> dict:
    from omsweb.demo import ensure_reference_data
    from omsweb.redis_client import client
    from orders.models import Account, Instrument
    from risk.engine import mark_key
    from venues.models import Venue

    ensure_reference_data()
    client().delete(mark_key("BTC/USDT"))  # another test's mark would put 100 off-collar
    return {
        "account": Account.objects.get(code="DEMO"),
        "btc": Instrument.objects.get(symbol="BTC/USDT"),
        "venue": Venue.objects.get(name="sim-a"),
    }


@pytest.fixture
def ref(db):
    return _refdata()


@pytest.fixture
def tref(transactional_db):
    return _refdata()


def _new(ref, **kw) -> Order:
    args = {
        "user": None,
        "account": ref["account"],
        "instrument": ref["btc"],
        "side": "buy",
        "type": "limit",
        "quantity": D("1.5"),
        "price": D("100.25"),
        "venue": ref["venue"],
    }
    args.update(kw)
    try:
        return services.order_submit(**args).order
    except services.OrderRiskDenied as exc:
        raise AssertionError(exc.reasons) from exc


def _same(a, b) -> None:
    assert type(a) is type(b)
    assert model_to_dict(a) == model_to_dict(b)
    assert {f.attname: getattr(a, f.attname) for f in a._meta.concrete_fields} == {
        f.attname: getattr(b, f.attname) for f in b._meta.concrete_fields
    }


def test_lock_order_gives_what_the_orm_gives_with_related_rows(ref):
    order = _new(ref)
    with transaction.atomic():
        fast = rows.lock_order(order.pk)
    slow = Order.objects.select_related("instrument", "account", "venue").get(pk=order.pk)
    _same(fast, slow)
    with CaptureQueriesContext(connection) as queries:  # related rows came with it
        related = (fast.instrument, fast.account, fast.venue)
    assert len(queries) == 0
    for mine, theirs in zip(related, (slow.instrument, slow.account, slow.venue), strict=True):
        _same(mine, theirs)
    assert fast.venue.rate_limits == slow.venue.rate_limits  # JSON decoded, not a string


def test_lock_order_without_venue_and_missing_order(ref):
    order = _new(ref)
    Order.objects.filter(pk=order.pk).update(venue=None)
    with transaction.atomic():
        assert rows.lock_order(order.pk).venue is None
    with pytest.raises(Order.DoesNotExist), transaction.atomic():
        rows.lock_order(order.pk + 10_000)


def test_lock_order_holds_the_row_lock(ref):
    order = _new(ref)
    with transaction.atomic():
        rows.lock_order(order.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = %s AND l.mode = 'RowShareLock' AND l.pid = pg_backend_pid()",
                [Order._meta.db_table],
            )
            assert cursor.fetchone()[0] == 1


def test_mark_submitted_is_one_statement_and_records_the_queue_time(ref):
    order = _new(ref)
    with CaptureQueriesContext(connection) as queries:
        marked = services.order_mark_submitted(order_id=order.pk, enqueued_at=1234.5)
    assert len(queries) == 1
    assert marked is not None and marked.status == "SUBMITTED" and marked.event_sequence == 2
    assert marked.instrument.symbol == "BTC/USDT" and marked.venue.name == "sim-a"
    order.refresh_from_db()
    assert order.status == "SUBMITTED" and order.event_sequence == 2
    event = OrderEvent.objects.get(order=order, sequence=2)
    assert (event.kind, event.source, event.status) == ("OrderSubmitted", "worker", "SUBMITTED")
    assert event.payload == {"enqueued_at": 1234.5}
    _same(marked, Order.objects.get(pk=order.pk))


def test_mark_submitted_only_from_pending_new(ref):
    order = _new(ref)
    assert services.order_mark_submitted(order_id=order.pk) is not None
    assert services.order_mark_submitted(order_id=order.pk) is None  # a second delivery
    canceled = _new(ref)
    services.order_cancel(order_id=canceled.pk)
    assert services.order_mark_submitted(order_id=canceled.pk) is None
    assert OrderEvent.objects.filter(kind="OrderSubmitted").count() == 1


def test_apply_batch_writes_events_in_sequence_once(ref):
    order = _new(ref, time_in_force="IOC")
    services.order_mark_submitted(order_id=order.pk)
    reports = [
        ExecutionReport(kind=ReportKind.ACK, venue_order_id="v9", client_order_id="c9"),
        ExecutionReport(kind=ReportKind.CANCELED, reason="IOC remainder canceled"),
    ]
    with CaptureQueriesContext(connection) as queries:
        results = services.execution_apply_batch(order_id=order.pk, reports=reports)
    assert [r.applied for r in results] == [True, True]
    writes = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # BEGIN, lock, events, order, venue ref, COMMIT
    assert len(writes) <= 6, writes
    order.refresh_from_db()
    assert order.status == "CANCELED" and order.venue_order_id == "v9"
    assert order.reason == "IOC remainder canceled" and order.event_sequence == 4
    kinds = list(OrderEvent.objects.filter(order=order).order_by("sequence").values_list("kind"))
    assert [k for (k,) in kinds] == [
        "OrderCreated",
        "OrderSubmitted",
        "OrderAccepted",
        "OrderCanceled",
    ]
    assert VenueOrderRef.objects.filter(order=order, venue_order_id="v9").count() == 1
    # the same answer again changes nothing
    again = services.execution_apply_batch(order_id=order.pk, reports=reports)
    assert not any(r.applied for r in again)
    order.refresh_from_db()
    assert order.event_sequence == 4


def _answer() -> list[ExecutionReport]:
    return [
        ExecutionReport(kind=ReportKind.ACK, venue_order_id="v7", client_order_id="c7"),
        ExecutionReport(kind=ReportKind.CANCELED, reason="IOC remainder canceled"),
    ]


@pytest.mark.django_db(transaction=True)  # outside a test transaction, as in a worker
def test_answer_applied_by_compare_and_set_in_one_statement(tref):
    ref = tref
    order = _new(ref, time_in_force="IOC")
    sent = services.order_mark_submitted(order_id=order.pk)
    with CaptureQueriesContext(connection) as queries:
        results = services.execution_apply_answer(order=sent, reports=_answer())
    assert len(queries) == 1 and [r.applied for r in results] == [True, True]
    assert sent.status == "SUBMITTED"  # the caller's copy is left alone
    order.refresh_from_db()
    assert (order.status, order.venue_order_id, order.event_sequence) == ("CANCELED", "v7", 4)
    assert order.reason == "IOC remainder canceled"
    events = OrderEvent.objects.filter(order=order).order_by("sequence")
    assert [(e.sequence, e.kind, e.status) for e in events][2:] == [
        (3, "OrderAccepted", "ACCEPTED"),
        (4, "OrderCanceled", "CANCELED"),
    ]
    assert events[2].payload["venue_order_id"] == "v7"
    ref_row = VenueOrderRef.objects.get(order=order)
    assert (ref_row.venue_order_id, ref_row.venue_client_order_id) == ("v7", "c7")


@pytest.mark.django_db(transaction=True)  # outside a test transaction, as in a worker
def test_answer_after_a_concurrent_change_goes_through_the_lock(tref):
    ref = tref
    order = _new(ref)
    sent = services.order_mark_submitted(order_id=order.pk)
    # the trader asks to cancel while the venue call is in flight
    services.order_cancel(order_id=order.pk, send=False)
    ack = [ExecutionReport(kind=ReportKind.ACK, venue_order_id="v8", client_order_id="c8")]
    results = services.execution_apply_answer(order=sent, reports=ack)
    assert [r.applied for r in results] == [True]
    order.refresh_from_db()
    # applied to the state as it is (cancel pending), not the stale SUBMITTED copy
    assert order.status == "PENDING_CANCEL" and order.venue_order_id == "v8"
    kinds = [e.kind for e in OrderEvent.objects.filter(order=order).order_by("sequence")]
    assert kinds == ["OrderCreated", "OrderSubmitted", "OrderCancelRequested", "OrderAccepted"]


@pytest.mark.django_db(transaction=True)  # outside a test transaction, as in a worker
def test_answer_with_a_fill_goes_through_the_lock(tref):
    ref = tref
    order = _new(ref)
    sent = services.order_mark_submitted(order_id=order.pk)
    reports = [
        ExecutionReport(kind=ReportKind.ACK, venue_order_id="v6", client_order_id="c6"),
        ExecutionReport(
            kind=ReportKind.FILL,
            venue_order_id="v6",
            trade_id="t6",
            quantity=D("1.5"),
            price=D("100.25"),
        ),
    ]
    services.execution_apply_answer(order=sent, reports=reports)
    order.refresh_from_db()
    assert order.status == "FILLED" and order.filled_quantity == D("1.5")
    from orders.models import Position

    assert Position.objects.get(account=ref["account"], instrument=ref["btc"]).quantity == D("1.5")


@pytest.mark.django_db(transaction=True)  # the mark commits on its own, as in a worker
def test_mark_sent_without_waiting_gives_what_mark_submitted_gives(tref):
    order = _new(tref)
    pending = services.order_send_mark_submitted(order_id=order.pk, enqueued_at=1234.5)
    marked = pending.result()
    assert marked is not None and marked.status == "SUBMITTED" and marked.event_sequence == 2
    _same(marked, Order.objects.get(pk=order.pk))
    slow = Order.objects.select_related("instrument", "account", "venue").get(pk=order.pk)
    for name in ("instrument", "account", "venue"):
        _same(getattr(marked, name), getattr(slow, name))
    event = OrderEvent.objects.get(order=order, sequence=2)
    assert (event.kind, event.payload) == ("OrderSubmitted", {"enqueued_at": 1234.5})
    assert pending.result() is marked  # read once
    again = services.order_send_mark_submitted(order_id=order.pk)
    assert again.result() is None  # past PENDING_NEW: nothing written
    assert OrderEvent.objects.filter(order=order).count() == 2


@pytest.mark.django_db(transaction=True)
def test_mark_sent_without_waiting_then_timeout_while_locked_and_answer_after(tref):
    import psycopg

    from tests.orders.test_submit_while_marking import _dsn

    order = _new(tref)
    with psycopg.connect(_dsn()) as other:
        other.execute("BEGIN")
        other.execute("SELECT 1 FROM orders_order WHERE id = %s FOR UPDATE", [order.pk])
        pending = services.order_send_mark_submitted(order_id=order.pk)
        with pytest.raises(TimeoutError):
            pending.result(timeout=0.1)
        other.execute("ROLLBACK")
        marked = pending.result(timeout=5)
    assert marked is not None and marked.status == "SUBMITTED"
    with connection.cursor() as cursor:  # the connection is usable again
        cursor.execute("SELECT status FROM orders_order WHERE id = %s", [order.pk])
        assert cursor.fetchone() == ("SUBMITTED",)


@pytest.mark.django_db(transaction=True)
def test_mark_sent_without_waiting_then_a_database_error_raised_as_django_does(tref):
    import psycopg
    from django.db import DatabaseError

    from tests.orders.test_submit_while_marking import _dsn

    order = _new(tref)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        with psycopg.connect(_dsn(), autocommit=True) as other:
            with other.transaction():  # the mark waits on this lock...
                other.execute("SELECT 1 FROM orders_order WHERE id = %s FOR UPDATE", [order.pk])
                pending = services.order_send_mark_submitted(order_id=order.pk)
                # ...while its server process is ended (a restarted server, say)
                other.execute("SELECT pg_terminate_backend(%s)", [pid])
        with pytest.raises(DatabaseError):
            pending.result(timeout=5)
        with pytest.raises(DatabaseError):  # asked again: the same error, not None
            pending.result()
        assert connection.errors_occurred  # closed after the task; the next reconnects
    finally:
        connection.close()
    order.refresh_from_db()
    assert order.status == "PENDING_NEW"  # nothing was written


@pytest.mark.django_db(transaction=True)
def test_mark_sent_without_waiting_is_prepared_once_and_again_if_it_was_dropped(tref):
    from django.db import DatabaseError

    first, second, third = _new(tref), _new(tref), _new(tref)
    assert services.order_send_mark_submitted(order_id=first.pk).result() is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM pg_prepared_statements")
        assert ("oms_mark_submitted",) in cursor.fetchall()
        cursor.execute("DEALLOCATE oms_mark_submitted")  # gone (a pooler, a reset...)
    with pytest.raises(DatabaseError):  # the task retries it...
        services.order_send_mark_submitted(order_id=second.pk).result()
    # ...and the retry prepares it again
    assert services.order_send_mark_submitted(order_id=second.pk).result() is not None
    assert services.order_send_mark_submitted(order_id=third.pk).result() is not None
    connection.close()  # errors_occurred: as after a task
