"""The order path's hot reads and writes, each one SQL statement (one round trip).

The ORM spends more time compiling a ``select_for_update().select_related(...)`` than
PostgreSQL spends answering it (about 1.5 ms against 0.3 ms on the 2-core machine), and
the order path runs such a query for every order several times. Here the statements
are built once per process from the models' own metadata (so a new column needs no
change here); values are prepared as ``save()`` prepares them (``pre_save``,
``get_db_prep_save``) and rows become instances as the ORM builds them
(``omsweb.sqlrows``).

* ``insert_order_with_event(order, event)``: a new order and its ``OrderCreated`` event
  (an ``INSERT ... RETURNING`` feeding the event's ``INSERT``); a duplicate
  ``client_order_id`` raises ``IntegrityError`` as ``create()`` would.
* ``lock_order(order_id)``: ``SELECT ... FOR UPDATE`` of the order with its instrument,
  account and venue, inside the caller's transaction.
* ``mark_submitted(order_id, ...)``: PENDING_NEW -> SUBMITTED and its ``OrderSubmitted``
  event in one statement (an ``UPDATE ... RETURNING`` feeding an ``INSERT`` in a CTE),
  atomic on its own: the row lock of the UPDATE and its ``WHERE status`` guard make a
  second delivery of the submit task find nothing to do.
* ``send_mark_submitted(order_id, ...)``: the same statement sent without waiting for
  its answer (libpq's asynchronous command processing); ``PendingMark.result()`` waits
  for it. The caller works meanwhile (the order path prepares the venue request).
* ``write_if_unchanged(order, ...)``: the order's changed fields, its new events and
  venue ids, only if its event sequence is still the one read (compare-and-set).
"""

from __future__ import annotations

import functools
import json
import select
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection, models
from psycopg import errors as pg_errors
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

from omsweb import sqlrows as sr
from orders.models import Account, Instrument, Order, OrderEvent
from venues.models import Venue

_RELATED = ("instrument", "account", "venue")  # joined with every order read here


@functools.cache
def _layout() -> tuple[sr.Part, ...]:
    return (sr.part(Order), sr.part(Instrument), sr.part(Account), sr.part(Venue))


_q = sr.q


@functools.cache
def _select_from(source: str) -> str:
    """``SELECT`` of the order (from ``source``: its table or a CTE) with its related
    rows, columns in ``_layout()`` order."""
    cols = ", ".join(
        p.select(alias) for p, alias in zip(_layout(), ("o", "i", "a", "v"), strict=True)
    )
    return (
        f"SELECT {cols} FROM {source} o "
        f"JOIN {sr.table(Instrument)} i ON i.{sr.pk(Instrument)} = o.{sr.column(Order, 'instrument')} "
        f"JOIN {sr.table(Account)} a ON a.{sr.pk(Account)} = o.{sr.column(Order, 'account')} "
        f"LEFT JOIN {sr.table(Venue)} v ON v.{sr.pk(Venue)} = o.{sr.column(Order, 'venue')}"
    )


def _hydrate(row: Sequence[Any]) -> Order:
    """A joined row -> an Order with its instrument, account and venue cached."""
    order, *related = sr.hydrate(_layout(), row)
    for name, obj in zip(_RELATED, related, strict=True):
        Order._meta.get_field(name).set_cached_value(order, obj)  # type: ignore[union-attr]
    return order


@functools.cache
def _insert_fields() -> tuple[tuple[models.Field, ...], tuple[models.Field, ...]]:
    order_fields = tuple(f for f in Order._meta.concrete_fields if not f.primary_key)
    event_fields = tuple(
        f for f in OrderEvent._meta.concrete_fields if not f.primary_key and f.name != "order"
    )
    return order_fields, event_fields


def _typed(fields: Sequence[models.Field]) -> str:
    """Placeholders cast to their columns' types, so a NULL or a literal in a SELECT list
    or a VALUES row gets its column's type."""
    return ", ".join(f"CAST(%s AS {f.cast_db_type(connection)})" for f in fields)


@functools.cache
def _insert_sql() -> str:
    order_fields, event_fields = _insert_fields()
    order_cols = ", ".join(_q(f.column) for f in order_fields)
    event_cols = ", ".join(_q(f.column) for f in event_fields)
    order_pk, event_pk = sr.pk(Order), sr.pk(OrderEvent)
    return (
        f"WITH o AS (INSERT INTO {sr.table(Order)} ({order_cols}) "
        f"VALUES ({_typed(order_fields)}) RETURNING {order_pk}), "
        f"e AS (INSERT INTO {sr.table(OrderEvent)} "
        f"({sr.column(OrderEvent, 'order')}, {event_cols}) "
        f"SELECT o.{order_pk}, {_typed(event_fields)} FROM o RETURNING {event_pk}) "
        f"SELECT o.{order_pk}, e.{event_pk} FROM o, e"
    )


def _prepared_values(instance: models.Model, fields: Sequence[models.Field]) -> list[Any]:
    """As ``save()`` prepares them: ``pre_save`` (auto_now_add, defaults), then
    ``get_db_prep_save``."""
    return [f.get_db_prep_save(f.pre_save(instance, add=True), connection) for f in fields]


def insert_order_with_event(order: Order, event: OrderEvent) -> None:
    """INSERT ``order`` and ``event`` (its first event; its ``order`` is ``order``) in one
    statement, inside the caller's transaction. Both get their primary keys and become
    saved instances, as after ``save()``."""
    order_fields, event_fields = _insert_fields()
    params = _prepared_values(order, order_fields) + _prepared_values(event, event_fields)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(), params)
        order_id, event_id = cursor.fetchone()
    for obj, pk in ((order, order_id), (event, event_id)):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias
    event.order = order  # sets order_id now that the order has one


@functools.cache
def _lock_sql() -> str:
    return f"{_select_from(sr.table(Order))} WHERE o.{sr.pk(Order)} = %s FOR UPDATE OF o"


def lock_order(order_id: int) -> Order:
    """The order with its instrument, account and venue, row-locked until the end of the
    caller's transaction. ``Order.DoesNotExist`` if there is none."""
    with connection.cursor() as cursor:
        cursor.execute(_lock_sql(), [order_id])
        row = cursor.fetchone()
    if row is None:
        raise Order.DoesNotExist(f"order {order_id} does not exist")
    return _hydrate(row)


@functools.cache
def _mark_sql() -> str:
    order_table = sr.table(Order)
    event_table = sr.table(OrderEvent)
    order_cols = ", ".join(_q(c) for c in sr.part(Order).columns)
    ev = {f.name: f.column for f in OrderEvent._meta.concrete_fields}
    o = {f.name: f.column for f in Order._meta.concrete_fields}
    event_cols = ", ".join(
        _q(ev[n])
        for n in ("order", "sequence", "kind", "source", "status", "payload", "late", "created_at")
    )
    return (
        f"WITH o AS ("
        f"UPDATE {order_table} SET {_q(o['status'])} = %(to)s, "
        f"{_q(o['event_sequence'])} = {_q(o['event_sequence'])} + 1, "
        f"{_q(o['updated_at'])} = %(now)s "
        f"WHERE {_q(o['id'])} = %(id)s AND {_q(o['status'])} = %(from)s "
        f"RETURNING {order_cols}), "
        f"e AS (INSERT INTO {event_table} ({event_cols}) "
        f"SELECT o.{_q(o['id'])}, o.{_q(o['event_sequence'])}, %(kind)s, %(source)s, "
        f"o.{_q(o['status'])}, %(payload)s::jsonb, false, %(now)s FROM o) "
        f"{_select_from('o')}"
    )


# The mark's parameters, in the order of its $n placeholders (send_mark_submitted).
_MARK_PARAMS = ("id", "from", "to", "kind", "source", "payload", "now")


def _mark_values(
    order_id: int,
    from_status: str,
    to_status: str,
    kind: str,
    source: str,
    payload: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """The mark's parameters by name (``_MARK_PARAMS``)."""
    values = (order_id, from_status, to_status, kind, source, json.dumps(payload), now)
    return dict(zip(_MARK_PARAMS, values, strict=True))


def mark_submitted(
    order_id: int,
    *,
    from_status: str,
    to_status: str,
    kind: str,
    source: str,
    payload: dict[str, Any],
    now: datetime,
) -> Order | None:
    """Move the order from ``from_status`` to ``to_status`` and append its event, in one
    atomic statement. None when the order is not in ``from_status`` (nothing written).
    Must run outside a transaction or at its end: the row lock is held until commit."""
    values = _mark_values(order_id, from_status, to_status, kind, source, payload, now)
    with connection.cursor() as cursor:
        cursor.execute(_mark_sql(), values)
        row = cursor.fetchone()
    return None if row is None else _hydrate(row)


@functools.cache
def _mark_sql_numbered() -> bytes:
    sql = _mark_sql()
    for n, name in enumerate(_MARK_PARAMS, start=1):
        sql = sql.replace(f"%({name})s", f"${n}")
    assert "%(" not in sql, sql
    return sql.encode()


class PendingMark:
    """A ``mark_submitted`` statement sent, its answer not read yet.

    Nothing else may use this thread's connection until ``result()`` has returned
    (libpq runs one command at a time per connection)."""

    def __init__(self, raw: Any, tx: Transformer) -> None:
        self._raw = raw
        self._tx = tx
        self._order: Order | None = None
        self._error: BaseException | None = None
        self._done = False

    def result(self, timeout: float | None = None) -> Order | None:
        """The marked order (None if it was not in ``from_status``), once the statement
        has committed. ``TimeoutError`` if it has not within ``timeout`` seconds (call
        again: the statement is still running); a database error as Django raises it."""
        if self._done:
            if self._error is not None:
                raise self._error
            return self._order
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            # Django's exceptions; a broken connection is closed after the task
            with connection.wrap_database_errors:
                results = _read_results(self._raw.pgconn, deadline)
                failed = [r for r in results if r.status == pq.ExecStatus.FATAL_ERROR]
                if failed:
                    encoding = self._raw.info.encoding
                    raise pg_errors.error_from_result(failed[0], encoding=encoding)
        except TimeoutError:
            raise  # still running: ask again
        except BaseException as exc:  # a database error, or interrupted (time limit)
            self._done, self._error = True, exc
            _forget_prepared(self._raw)
            # checked after the task: a connection with a command still in flight is
            # not usable, so it is closed and the next task opens a fresh one
            connection.errors_occurred = True
            raise
        self._done = True
        (res,) = results
        if res.ntuples == 0:
            return None
        self._tx.set_pgresult(res)
        self._order = _hydrate(self._tx.load_row(0, tuple))
        return self._order


def _read_results(pgconn: Any, deadline: float | None) -> list[Any]:
    """Every result of the command in flight on ``pgconn``, waiting on its socket."""
    results = []
    while True:
        pgconn.consume_input()
        while not pgconn.is_busy():
            res = pgconn.get_result()
            if res is None:
                return results
            results.append(res)
        wait = None if deadline is None else deadline - time.monotonic()
        if wait is not None and wait <= 0:
            raise TimeoutError("the mark has not answered yet")
        select.select([pgconn.socket], [], [], wait)


def send_mark_submitted(
    order_id: int,
    *,
    from_status: str,
    to_status: str,
    kind: str,
    source: str,
    payload: dict[str, Any],
    now: datetime,
) -> PendingMark:
    """``mark_submitted`` sent without waiting for the answer: the statement runs (and
    commits: it is a transaction of its own) while the caller works. Outside a
    transaction only."""
    assert not connection.in_atomic_block, "the mark must commit on its own"
    values = _mark_values(order_id, from_status, to_status, kind, source, payload, now)
    with connection.wrap_database_errors:
        connection.ensure_connection()
        raw = connection.connection
        _prepare_mark(raw)
        tx = Transformer(raw)
        # text format: the server parses each value as the type it inferred at PREPARE
        params = tx.dump_sequence(list(values.values()), [PyFormat.TEXT] * len(values))
        pgconn = raw.pgconn
        pgconn.send_query_prepared(_MARK_STATEMENT, params, param_formats=[0] * len(params))
        while pgconn.flush():  # non-blocking connection: wait until it is all out
            select.select([], [pgconn.socket], [])
    return PendingMark(raw, tx)


# The mark is a prepared statement on each connection that sends it: planning the
# statement (an UPDATE and an INSERT in a CTE, joined to three tables) cost more than
# running it (a mark took 2.4 ms unprepared, 1.5 ms prepared, after an idle pause on
# the 2-core machine).
_MARK_STATEMENT = b"oms_mark_submitted"
_prepared: set[tuple[int, int]] = set()  # (id of the connection, its server process id)


def _prepare_mark(raw: Any) -> None:
    key = (id(raw), raw.info.backend_pid)
    if key in _prepared:
        return
    res = raw.pgconn.prepare(_MARK_STATEMENT, _mark_sql_numbered())
    if (
        res.status == pq.ExecStatus.FATAL_ERROR
        and res.error_field(pq.DiagnosticField.SQLSTATE) == b"42P05"
    ):
        pass  # still there: forgotten here after an error that did not drop it
    elif res.status != pq.ExecStatus.COMMAND_OK:
        raise pg_errors.error_from_result(res, encoding=raw.info.encoding)
    _prepared.add(key)


def _forget_prepared(raw: Any) -> None:
    """After an error: prepare again next time (the statement may be gone, or no longer
    match the tables after a migration)."""
    _prepared.difference_update({k for k in _prepared if k[0] == id(raw)})


def _insert_rows(name: str, instances: Sequence[models.Model], params: list[Any]) -> str:
    """A data-modifying CTE inserting ``instances`` only if ``o`` (the guarded UPDATE)
    changed a row; values cast to their column types, so NULLs and literals type
    correctly."""
    model = type(instances[0])
    fields, sql = _insert_rows_sql(name, model, len(instances))
    for obj in instances:
        params += _prepared_values(obj, fields)
    return sql


@functools.cache
def _insert_rows_sql(
    name: str, model: type[models.Model], n: int
) -> tuple[tuple[models.Field, ...], str]:
    fields = tuple(f for f in model._meta.concrete_fields if not f.primary_key)
    cols = ", ".join(_q(f.column) for f in fields)
    conflict = " ON CONFLICT DO NOTHING" if model is not OrderEvent else ""
    rows = ", ".join([f"({_typed(fields)})"] * n)
    return fields, (
        f", {name} AS (INSERT INTO {sr.table(model)} ({cols}) "
        f"SELECT v.* FROM (VALUES {rows}) AS v({cols}) "
        f"CROSS JOIN o{conflict})"
    )


def write_if_unchanged(
    order: Order,
    *,
    expected_sequence: int,
    fields: Sequence[str],
    events: Sequence[OrderEvent],
    refs: Sequence[models.Model],
) -> bool:
    """Compare-and-set: write ``order``'s ``fields``, its new ``events`` and venue order
    ``refs`` in one statement, only if the order's event sequence in the database is
    still ``expected_sequence`` (nothing else changed it since it was read: every change
    of an order appends an event). False (nothing written) otherwise."""
    meta = Order._meta
    order_fields = [meta.get_field(name) for name in fields]
    params: list[Any] = []
    sets = []
    for f in order_fields:
        value = f.pre_save(order, add=False)  # sets updated_at (auto_now), as save() does
        sets.append(f"{_q(f.column)} = %s")  # type: ignore[union-attr]
        params.append(f.get_db_prep_save(value, connection))  # type: ignore[union-attr]
    pk, seq = sr.pk(Order), sr.column(Order, "event_sequence")
    sql = (
        f"WITH o AS (UPDATE {sr.table(Order)} SET {', '.join(sets)} "
        f"WHERE {pk} = %s AND {seq} = %s RETURNING {pk})"
    )
    params += [order.pk, expected_sequence]
    if events:
        sql += _insert_rows("e", events, params)
    if refs:
        sql += _insert_rows("r", refs, params)
    sql += " SELECT count(*) FROM o"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bool(row and row[0])
