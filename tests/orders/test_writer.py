"""The one writer (orders/writer.py) against real PostgreSQL: its one-statement reads
and writes must give exactly what the ORM would, keep the lifecycle's rules, and follow
the models' metadata (a new column needs no edit in the writer)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal as D

import pytest
from django.db import connection, models, transaction
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext

from omsweb import sqlrows
from orders import engine, writer
from orders.domain import lifecycle as lc
from orders.domain.commands import CancelOrder, SubmitOrder
from orders.domain.errors import OrderRiskDenied
from orders.models import Fill, Order, OrderEvent, Position, VenueOrderRef
from orders.reports import ExecutionReport, ReportKind
from tests.marking import mark_sent

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
        "account": ref["account"].code,
        "symbol": ref["btc"].symbol,
        "side": "buy",
        "type": "limit",
        "quantity": D("1.5"),
        "price": D("100.25"),
        "venue": ref["venue"].name,
    }
    args.update(kw)
    try:
        return engine.execute(SubmitOrder(**args)).order
    except OrderRiskDenied as exc:
        raise AssertionError(exc.reasons) from exc


def _same(a, b) -> None:
    assert type(a) is type(b)
    assert model_to_dict(a) == model_to_dict(b)
    assert {f.attname: getattr(a, f.attname) for f in a._meta.concrete_fields} == {
        f.attname: getattr(b, f.attname) for f in b._meta.concrete_fields
    }


def _kinds(order: Order) -> list[str]:
    return list(
        OrderEvent.objects.filter(order=order).order_by("sequence").values_list("kind", flat=True)
    )


def _row_locks_held() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = %s AND l.mode = 'RowShareLock' AND l.pid = pg_backend_pid()",
            [Order._meta.db_table],
        )
        return cursor.fetchone()[0]


# --- the lock read ----------------------------------------------------------------------


def test_lock_gives_what_the_orm_gives_with_related_rows(ref):
    order = _new(ref)
    with transaction.atomic():
        fast = writer._lock(order.pk)
    slow = Order.objects.select_related("instrument", "account", "venue").get(pk=order.pk)
    _same(fast, slow)
    with CaptureQueriesContext(connection) as queries:  # related rows came with it
        related = (fast.instrument, fast.account, fast.venue)
    assert len(queries) == 0
    for mine, theirs in zip(related, (slow.instrument, slow.account, slow.venue), strict=True):
        _same(mine, theirs)
    assert fast.venue.rate_limits == slow.venue.rate_limits  # JSON decoded, not a string


def test_lock_without_venue_and_missing_order(ref):
    order = _new(ref)
    Order.objects.filter(pk=order.pk).update(venue=None)
    with transaction.atomic():
        assert writer._lock(order.pk).venue is None
    with pytest.raises(Order.DoesNotExist), writer.locked(order.pk + 10_000):
        pass


def test_locked_holds_the_row_lock_and_writes_nothing_when_nothing_changed(ref):
    order = _new(ref)
    with CaptureQueriesContext(connection) as queries, writer.locked(order.pk) as w:
        assert _row_locks_held() == 1
        assert w.order.pk == order.pk and w.order.instrument.symbol == "BTC/USDT"
    sql = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    assert sql[0].endswith("FOR UPDATE OF o") and len(sql) == 2  # the lock, pg_locks


# --- the mark: PENDING_NEW -> SUBMITTED ------------------------------------------------


def test_mark_submitted_is_one_statement_and_records_the_queue_time(ref):
    order = _new(ref)
    with CaptureQueriesContext(connection) as queries:
        marked = writer.mark_submitted(order.pk, payload={"enqueued_at": 1234.5})
    assert len(queries) == 1
    assert marked is not None and marked.status == "SUBMITTED" and marked.event_sequence == 2
    assert marked.instrument.symbol == "BTC/USDT" and marked.venue.name == "sim-a"
    order.refresh_from_db()
    assert order.status == "SUBMITTED" and order.event_sequence == 2
    event = OrderEvent.objects.get(order=order, sequence=2)
    assert (event.kind, event.source, event.status) == ("OrderSubmitted", "worker", "SUBMITTED")
    assert event.payload == {"enqueued_at": 1234.5}
    _same(marked, Order.objects.get(pk=order.pk))
    slow = Order.objects.select_related("instrument", "account", "venue").get(pk=order.pk)
    for name in ("instrument", "account", "venue"):
        _same(getattr(marked, name), getattr(slow, name))


def test_mark_sent_passes_the_queue_time_to_the_mark(ref):
    order = _new(ref)
    assert mark_sent(order.pk, enqueued_at=99.5) is not None
    assert OrderEvent.objects.get(order=order, sequence=2).payload == {"enqueued_at": 99.5}
    other = _new(ref)
    assert mark_sent(other.pk) is not None
    assert OrderEvent.objects.get(order=other, sequence=2).payload == {}


def test_mark_submitted_only_from_pending_new(ref):
    order = _new(ref)
    assert writer.mark_submitted(order.pk, payload={}) is not None
    assert writer.mark_submitted(order.pk, payload={}) is None  # a second delivery
    canceled = _new(ref)
    engine.execute(CancelOrder(order_id=canceled.pk))
    assert writer.mark_submitted(canceled.pk, payload={}) is None
    assert writer.mark_submitted(canceled.pk + 10_000, payload={}) is None  # no such order
    assert OrderEvent.objects.filter(kind="OrderSubmitted").count() == 1
    canceled.refresh_from_db()
    assert canceled.status == "CANCELED" and canceled.event_sequence == 2


# --- changes under the lock -------------------------------------------------------------


def test_process_writes_events_in_sequence_once(ref):
    order = _new(ref, time_in_force="IOC")
    mark_sent(order.pk)
    reports = [
        ExecutionReport(kind=ReportKind.ACK, venue_order_id="v9", client_order_id="c9"),
        ExecutionReport(kind=ReportKind.CANCELED, reason="IOC remainder canceled"),
    ]
    with CaptureQueriesContext(connection) as queries:
        results = engine.process(order.pk, reports)
    assert [r.applied for r in results] == [True, True]
    sql = [q["sql"] for q in queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # the lock, then the order, both events and the venue ref in one statement
    assert len(sql) == 2, sql
    assert sql[0].endswith("FOR UPDATE OF o") and sql[1].startswith("WITH o AS (UPDATE")
    order.refresh_from_db()
    assert order.status == "CANCELED" and order.venue_order_id == "v9"
    assert order.reason == "IOC remainder canceled" and order.event_sequence == 4
    assert _kinds(order) == ["OrderCreated", "OrderSubmitted", "OrderAccepted", "OrderCanceled"]
    events = OrderEvent.objects.filter(order=order).order_by("sequence")
    assert [(e.sequence, e.status) for e in events][2:] == [(3, "ACCEPTED"), (4, "CANCELED")]
    assert events[2].payload["venue_order_id"] == "v9"
    ref_row = VenueOrderRef.objects.get(order=order, venue_order_id="v9")
    assert ref_row.venue_client_order_id == "c9"
    # the same answer again changes nothing
    again = engine.process(order.pk, reports)
    assert not any(r.applied for r in again)
    order.refresh_from_db()
    assert order.event_sequence == 4
    assert VenueOrderRef.objects.filter(order=order).count() == 1


def test_apply_note_set_and_link_written_in_one_flush(ref):
    order = _new(ref)
    mark_sent(order.pk)
    with writer.locked(order.pk) as w:
        w.apply(lc.OrderAccepted(venue_order_id="v5"), source="venue", payload={"a": 1})
        w.link("v5", venue_client_order_id="c5")
        w.note("OperatorNote", source="admin", payload={"b": 2})
        w.set(reason="noted")
        with CaptureQueriesContext(connection) as queries:
            w.flush()
        assert len(queries) == 1
        with CaptureQueriesContext(connection) as queries:
            w.flush()  # nothing left to write
        assert len(queries) == 0
    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.venue_order_id, stored.reason) == ("ACCEPTED", "v5", "noted")
    assert stored.event_sequence == 4
    events = list(OrderEvent.objects.filter(order=order).order_by("sequence"))
    assert [(e.sequence, e.kind, e.source, e.status, e.payload) for e in events][2:] == [
        (3, "OrderAccepted", "venue", "ACCEPTED", {"a": 1}),
        (4, "OperatorNote", "admin", "ACCEPTED", {"b": 2}),
    ]
    assert VenueOrderRef.objects.get(order=order).venue_client_order_id == "c5"


def test_a_refused_transition_changes_nothing(ref):
    order = _new(ref)
    with writer.locked(order.pk) as w:
        with pytest.raises(lc.LifecycleError):
            w.apply(
                lc.OrderFilled(trade_id="t", quantity=D("1"), price=D("100")),
                source="venue",
                payload={},
            )
    stored = Order.objects.get(pk=order.pk)
    assert stored.status == "PENDING_NEW" and stored.event_sequence == 1
    assert _kinds(order) == ["OrderCreated"]


def test_a_write_without_the_lock_in_between_is_caught_not_overwritten(ref):
    order = _new(ref)
    with writer.locked(order.pk) as w:
        w.note("First", source="admin", payload={})
        # something wrote the order behind the writer's back (same transaction: the lock
        # does not stop it); the sequence guard must refuse to write over it
        Order.objects.filter(pk=order.pk).update(event_sequence=7)
        with pytest.raises(RuntimeError, match="changed while"):
            w.flush()
        w._fields, w._events, w._refs = set(), [], {}  # let the block end cleanly
    assert not OrderEvent.objects.filter(order=order, kind="First").exists()


def test_a_fill_under_the_lock_books_the_fill_and_the_position(ref):
    order = _new(ref)
    mark_sent(order.pk)
    with writer.locked(order.pk) as w:
        w.apply(lc.OrderAccepted(venue_order_id="v4"), source="venue", payload={})
        transition = w.apply(
            lc.OrderFilled(trade_id="t4", quantity=D("0.5"), price=D("100")),
            source="venue",
            payload={"trade_id": "t4"},
        )
        booked = w.fill(
            trade_id="t4",
            quantity=D("0.5"),
            price=D("100"),
            fee=D("0.1"),
            fee_currency="USDT",
            is_maker=True,
            late=transition.late,
            executed_at=None,
        )
        assert w.fill_known("t4") and not w.fill_known("t5")
    assert booked.fill.pk is not None and booked.position.quantity == D("0.5")
    stored = Order.objects.get(pk=order.pk)
    assert (stored.status, stored.filled_quantity) == ("PARTIALLY_FILLED", D("0.5"))
    fill = Fill.objects.get(order=order)
    assert (fill.venue_trade_id, fill.quantity, fill.is_maker) == ("t4", D("0.5"), True)
    position = Position.objects.get(account=ref["account"], instrument=ref["btc"])
    assert (position.quantity, position.fees) == (D("0.5"), D("0.1"))
    assert _kinds(order)[2:] == ["OrderAccepted", "OrderFilled"]


@pytest.mark.django_db(transaction=True)  # outside a test transaction, as in a worker
def test_answer_after_a_concurrent_change_goes_through_the_lock(tref):
    order = _new(tref)
    mark_sent(order.pk)
    # the trader asks to cancel while the venue call is in flight
    engine.execute(CancelOrder(order_id=order.pk, send=False))
    ack = [ExecutionReport(kind=ReportKind.ACK, venue_order_id="v8", client_order_id="c8")]
    results = engine.process(order.pk, ack)
    assert [r.applied for r in results] == [True]
    order.refresh_from_db()
    # applied to the state as it is (cancel pending), not a stale SUBMITTED copy
    assert order.status == "PENDING_CANCEL" and order.venue_order_id == "v8"
    assert _kinds(order) == [
        "OrderCreated",
        "OrderSubmitted",
        "OrderCancelRequested",
        "OrderAccepted",
    ]


@pytest.mark.django_db(transaction=True)  # outside a test transaction, as in a worker
def test_answer_with_a_fill_goes_through_the_lock(tref):
    order = _new(tref)
    mark_sent(order.pk)
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
    assert [r.applied for r in engine.process(order.pk, reports)] == [True, True]
    order.refresh_from_db()
    assert order.status == "FILLED" and order.filled_quantity == D("1.5")
    position = Position.objects.get(account=tref["account"], instrument=tref["btc"])
    assert position.quantity == D("1.5")


# --- a new column on Order or OrderEvent needs no edit elsewhere -------------------------

EXTRA = "zz_extra"  # a column no model has


def _clear_sql_caches() -> None:
    sqlrows.part.cache_clear()
    for builder in (
        writer._layout,
        writer._select_from,
        writer._lock_sql,
        writer._insert_sql,
        writer._mark_sql,
        writer._insert_rows_sql,
    ):
        builder.cache_clear()


def _columns(model: type[models.Model]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if not f.primary_key]


@contextmanager
def _meta_field(model: type[models.Model], field: models.Field) -> Iterator[models.Field]:
    """``field`` on ``model``'s class and ``_meta`` for the block (no table change)."""
    field.contribute_to_class(model, EXTRA)
    _clear_sql_caches()
    try:
        yield field
    finally:
        model._meta.local_fields.remove(field)
        model._meta._expire_cache()
        if EXTRA in model.__dict__:
            delattr(model, EXTRA)
        _clear_sql_caches()
        assert EXTRA not in {f.name for f in model._meta.get_fields()}


@contextmanager
def _column(model: type[models.Model], field: models.Field) -> Iterator[models.Field]:
    """``field`` on the model and as a column of its table, for the block (the test's
    transaction rolls the table back in any case)."""
    with _meta_field(model, field):
        with connection.schema_editor() as editor:
            editor.add_field(model, field)
        try:
            yield field
        finally:
            with connection.cursor() as cursor:  # no deferred FK checks left to block DDL
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            with connection.schema_editor() as editor:
                editor.remove_field(model, field)


def test_every_column_is_in_the_writers_statements():
    _clear_sql_caches()
    insert, lock, mark = writer._insert_sql(), writer._lock_sql(), writer._mark_sql()
    for column in _columns(Order):
        q = connection.ops.quote_name(column)
        assert q in insert and f"o.{q}" in lock and f"o.{q}" in mark, column
    for column in _columns(OrderEvent):
        q = connection.ops.quote_name(column)
        assert q in insert, column


@pytest.mark.parametrize("model", [Order, OrderEvent])
def test_a_field_added_to_the_model_is_in_the_statements_after_a_cache_clear(model):
    q = connection.ops.quote_name(EXTRA)
    _clear_sql_caches()
    assert q not in writer._insert_sql()
    with _meta_field(model, models.CharField(max_length=20, null=True)):
        assert q in writer._insert_sql()
        assert q in writer._insert_rows_sql("e", model, 1)
        if model is Order:
            assert q in writer._lock_sql() and q in writer._mark_sql()
    assert q not in writer._insert_sql() and q not in writer._lock_sql()
    assert q not in writer._mark_sql()


def _order_for(ref, client_order_id: str, **extra) -> tuple[Order, OrderEvent]:
    """A new order and its first event, as the engine builds them."""
    order = Order(
        client_order_id=client_order_id,
        venue_client_order_id=client_order_id,
        account=ref["account"],
        instrument=ref["btc"],
        side="buy",
        type="limit",
        quantity=D("1"),
        price=D("100"),
        time_in_force="GTC",
        venue=ref["venue"],
        status="PENDING_NEW",
        request_fingerprint="f",
        event_sequence=1,
        **extra.get("order", {}),
    )
    created = OrderEvent(
        order=order,
        sequence=1,
        kind="OrderCreated",
        source="api",
        status="PENDING_NEW",
        payload={},
        **extra.get("event", {}),
    )
    return order, created


def _stored(model: type[models.Model], **flt) -> object:
    return model.objects.filter(**flt).values_list(EXTRA, flat=True).get()


def _read(order: Order) -> object:
    """The new column's value as loaded with the row: reading it runs no query."""
    with CaptureQueriesContext(connection) as queries:
        value = getattr(order, EXTRA)
    assert len(queries) == 0, "the column was not read with the row"
    return value


def test_a_new_column_on_order_is_written_and_read_with_no_edit_elsewhere(ref):
    with _column(Order, models.CharField(max_length=20, null=True)):
        order, created = _order_for(ref, "col-order", order={EXTRA: "inserted"})
        with writer.inserted(order, created):
            pass
        assert _stored(Order, pk=order.pk) == "inserted"
        # the lock reads it with the rest of the row (no query loads a deferred field)
        with writer.locked(order.pk) as w:
            assert _read(w.order) == "inserted"
        # the mark returns it with the row too
        marked = writer.mark_submitted(order.pk, payload={})
        assert marked is not None and _read(marked) == "inserted"
        # a change under the lock writes it with the event, in the one flush
        with writer.locked(order.pk) as w:
            w.apply(lc.OrderAccepted(venue_order_id="vx"), source="venue", payload={})
            w.set(**{EXTRA: "applied"})
        assert _stored(Order, pk=order.pk) == "applied"
        with transaction.atomic():
            assert _read(writer._lock(order.pk)) == "applied"
        stored = Order.objects.get(pk=order.pk)
        assert (stored.status, stored.event_sequence) == ("ACCEPTED", 3)


def test_a_new_column_on_order_event_is_written_with_no_edit_elsewhere(ref):
    with _column(OrderEvent, models.CharField(max_length=20, null=True)):
        order, created = _order_for(ref, "col-event", event={EXTRA: "created"})
        with writer.inserted(order, created) as w:
            w.note("Noted", source="admin", payload={})
            setattr(w._events[-1], EXTRA, "noted")  # on the event the writer built
        assert _stored(OrderEvent, order=order, sequence=1) == "created"
        assert _stored(OrderEvent, order=order, sequence=2) == "noted"
        # the mark writes the event row with the new column at its default (NULL)
        assert writer.mark_submitted(order.pk, payload={}) is not None
        assert _stored(OrderEvent, order=order, sequence=3) is None
        with writer.locked(order.pk) as w:
            w.apply(lc.OrderAccepted(venue_order_id="vy"), source="venue", payload={})
        assert _stored(OrderEvent, order=order, sequence=4) is None
        assert _kinds(order) == ["OrderCreated", "Noted", "OrderSubmitted", "OrderAccepted"]


def test_a_new_event_column_with_a_default_gets_it_from_every_writer(ref):
    field = models.CharField(max_length=20, null=True, default="std")
    with _column(OrderEvent, field):
        order, created = _order_for(ref, "col-default")
        with writer.inserted(order, created):
            pass
        writer.mark_submitted(order.pk, payload={})
        with writer.locked(order.pk) as w:
            w.apply(lc.OrderAccepted(venue_order_id="vz"), source="venue", payload={})
        stored = list(
            OrderEvent.objects.filter(order=order)
            .order_by("sequence")
            .values_list(EXTRA, flat=True)
        )
        assert stored == ["std", "std", "std"]  # inserted, marked, applied
