"""The one writer: the only code that writes Order, OrderEvent, Fill, Position and
VenueOrderRef rows. The execution engine (``orders/engine.py``) decides; this module
persists.

**One concurrency rule, everywhere: a change to an order is written while its row
lock is held.** ``locked(order_id)`` takes it (``SELECT ... FOR UPDATE`` in the
caller's transaction) and returns an ``OrderWrite``; every change (a lifecycle event, a
note, a venue id, a fill and its position) goes through it, inside that transaction.
Two writes need no separate lock because their one statement takes the same row lock:
inserting a new order (``insert``) and the mark PENDING_NEW -> SUBMITTED
(``mark_submitted``, an ``UPDATE ... WHERE status = 'PENDING_NEW'``).

An ``OrderWrite`` collects the order's changed fields, its new events and venue ids and
sends them in one statement (``flush``: an UPDATE of the order feeding the INSERTs of
its events and refs), guarded by the event sequence read under the lock: if that guard
ever fails, something wrote the order without its lock, and that is a bug (raised).

Each event is sealed into its order's hash chain as it is made (``orders/chain.py``:
``prev_hash`` is the order's ``event_hash``, read with the lock; the mark hashes in its
statement), so the audit trail costs the order path no query.

The statements are built once per process from the models' metadata (a new column on
Order or OrderEvent needs no edit here; ``tests/orders/test_writer.py`` proves it);
values are prepared as ``save()`` prepares them and rows become instances as the ORM
builds them (``omsweb.sqlrows``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from django.db import connection, models, transaction
from django.utils import timezone

from audit.chain import GENESIS, link_sql
from omsweb import sqlrows as sr
from orders import chain
from orders.domain import lifecycle as lc
from orders.domain.positions import PositionState, apply_fill
from orders.models import Account, Fill, Instrument, Order, OrderEvent, Position, VenueOrderRef
from venues.models import Venue

ZERO = Decimal(0)
DB_PLACES = Decimal("1e-12")  # the scale of the decimal columns


# --- reading an order as the lifecycle sees it -------------------------------------------


def state_of(order: Order) -> lc.OrderState:
    return lc.OrderState(
        status=lc.OrderStatus(order.status),
        quantity=order.quantity,
        price=order.price,
        filled_quantity=order.filled_quantity,
        average_price=order.average_price,
        prior_status=lc.OrderStatus(order.prior_status) if order.prior_status else None,
        venue_order_id=order.venue_order_id or None,
        pending_quantity=order.pending_quantity,
        pending_price=order.pending_price,
        filled_notional=order.filled_notional,
    )


def _state_values(state: lc.OrderState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "quantity": state.quantity,
        "price": state.price,
        "filled_quantity": state.filled_quantity,
        "filled_notional": state.filled_notional,
        "average_price": (
            None if state.average_price is None else state.average_price.quantize(DB_PLACES)
        ),
        "prior_status": state.prior_status.value if state.prior_status else "",
        "venue_order_id": state.venue_order_id or "",
        "pending_quantity": state.pending_quantity,
        "pending_price": state.pending_price,
    }


# --- one locked order ------------------------------------------------------------------


@dataclass
class BookedFill:
    """What ``OrderWrite.fill`` wrote: the fill and the position it moved."""

    fill: Fill
    position: Position


class OrderWrite:
    """The changes to one order whose row lock this transaction holds."""

    def __init__(self, order: Order) -> None:
        self.order = order
        self._read_sequence = order.event_sequence
        self._fields: set[str] = set()
        self._events: list[OrderEvent] = []
        self._refs: dict[str, VenueOrderRef] = {}

    def apply(
        self,
        event: lc.OrderEvent,
        *,
        source: str,
        payload: dict[str, Any],
        **fields: Any,
    ) -> lc.Transition:
        """Apply a lifecycle event: the new state, ``fields`` (other columns the event
        sets, e.g. ``reason``) and the event row. ``LifecycleError`` if the lifecycle
        refuses it (nothing changed)."""
        return self.record(
            event, lc.apply(state_of(self.order), event), source=source, payload=payload, **fields
        )

    def record(
        self,
        event: lc.OrderEvent,
        transition: lc.Transition,
        *,
        source: str,
        payload: dict[str, Any],
        **fields: Any,
    ) -> lc.Transition:
        """``apply`` for a transition the caller already computed from this order."""
        self.set(**_state_values(transition.state), **fields)
        self._event(event.kind, source, payload, late=transition.late)
        return transition

    def note(self, kind: str, *, source: str, payload: dict[str, Any]) -> None:
        """An event on the order's record that changes no state (a denied amend, an
        ignored report, a re-send, an adoption)."""
        self._event(kind, source, payload, late=False)

    def set(self, **fields: Any) -> None:
        """Set columns of the order (only those that change are written)."""
        for name, value in fields.items():
            if getattr(self.order, name) != value:
                setattr(self.order, name, value)
                self._fields.add(name)

    def link(self, venue_order_id: str, *, venue_client_order_id: str) -> None:
        """Remember an id the venue gave the order (one per cancel-replace)."""
        self._refs[venue_order_id] = VenueOrderRef(
            order=self.order,
            venue_id=self._venue_id,
            instrument_id=self.order.instrument_id,
            venue_order_id=venue_order_id,
            venue_client_order_id=venue_client_order_id,
        )

    def fill_known(self, trade_id: str) -> bool:
        """Whether this venue trade is already booked (fills are unique per venue and
        symbol)."""
        return Fill.objects.filter(
            venue_id=self._venue_id, instrument_id=self.order.instrument_id, venue_trade_id=trade_id
        ).exists()

    @property
    def _venue_id(self) -> int:
        venue_id = self.order.venue_id
        if venue_id is None:  # a parent order: venue work is its children's
            raise ValueError(f"order {self.order.pk} has no venue")
        return venue_id

    def fill(
        self,
        *,
        trade_id: str,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        fee_currency: str,
        is_maker: bool | None,
        late: bool,
        executed_at: datetime | None,
    ) -> BookedFill:
        """Book a fill of the order (already applied with ``apply``) and move the
        account's position, in this transaction."""
        self.flush()  # the fill's row references the order as it is now
        order = self.order
        assert order.venue is not None
        fill = Fill.objects.create(
            order=order,
            venue=order.venue,  # the loaded rows: the live payload needs no query
            venue_trade_id=trade_id,
            account=order.account,
            instrument=order.instrument,
            side=order.side,
            quantity=quantity,
            price=price,
            fee=fee,
            fee_currency=fee_currency,
            is_maker=is_maker,
            late=late,
            executed_at=executed_at,
        )
        return BookedFill(fill=fill, position=_book_position(fill))

    def flush(self) -> None:
        """Write what changed in one statement (nothing when nothing changed)."""
        if not (self._fields or self._events or self._refs):
            return
        done = _write(
            self.order,
            expected_sequence=self._read_sequence,
            fields=sorted(self._fields),
            events=self._events,
            refs=list(self._refs.values()),
        )
        if not done:
            raise RuntimeError(
                f"order {self.order.pk} changed while this transaction held its lock"
            )
        self._read_sequence = self.order.event_sequence
        self._fields, self._events, self._refs = set(), [], {}

    def _event(self, kind: str, source: str, payload: dict[str, Any], *, late: bool) -> None:
        order = self.order
        order.event_sequence += 1
        self._fields.add("event_sequence")
        self.set(updated_at=timezone.now())
        event = OrderEvent(
            order=order,
            sequence=order.event_sequence,
            kind=kind,
            source=source,
            status=order.status,
            payload=payload,
            late=late,
        )
        self.set(event_hash=chain.seal(event, order.event_hash))
        self._events.append(event)


@contextmanager
def locked(order_id: int) -> Iterator[OrderWrite]:
    """A transaction holding the order's row lock; what the block changes through the
    ``OrderWrite`` is written when it ends (and committed with the outermost
    transaction). ``Order.DoesNotExist`` if there is no such order."""
    with transaction.atomic():
        write = OrderWrite(_lock(order_id))
        yield write
        write.flush()


@contextmanager
def inserted(order: Order, created: OrderEvent) -> Iterator[OrderWrite]:
    """Insert a new order and its first event (one statement) in a transaction; the
    insert holds the new row's lock, so the block may go on changing it."""
    with transaction.atomic():
        _insert(order, created)
        write = OrderWrite(order)
        yield write
        write.flush()


def _book_position(fill: Fill) -> Position:
    position, _ = Position.objects.select_for_update().get_or_create(
        account_id=fill.account_id, instrument_id=fill.instrument_id
    )
    state = apply_fill(
        PositionState(
            quantity=position.quantity,
            average_price=position.average_price,
            realized_pnl=position.realized_pnl,
            fees=position.fees,
        ),
        side=fill.side,
        quantity=fill.quantity,
        price=fill.price,
        fee_quote=_fee_in_quote(fill.instrument, fill.fee, fill.fee_currency, fill.price),
    )
    position.quantity = state.quantity
    position.average_price = state.average_price
    position.realized_pnl = state.realized_pnl
    position.fees = state.fees.quantize(DB_PLACES)
    position.save(update_fields=["quantity", "average_price", "realized_pnl", "fees", "updated_at"])
    position.account, position.instrument = fill.account, fill.instrument  # loaded: no query
    return position


def _fee_in_quote(instrument: Instrument, fee: Decimal, currency: str, price: Decimal) -> Decimal:
    if not fee or not currency or currency == instrument.quote:
        return fee
    if currency == instrument.base:
        return fee * price
    return ZERO  # fees in a third asset (e.g. a venue token) are kept on the fill only


def set_marks(symbol: str, mark: Decimal) -> None:
    """The latest mark price of every position in ``symbol`` (for unrealized P&L)."""
    Position.objects.filter(instrument__symbol=symbol).update(mark_price=mark.quantize(DB_PLACES))


# --- the mark: PENDING_NEW -> SUBMITTED, durable before the venue sees the order --------


def mark_submitted(order_id: int, *, payload: dict[str, Any]) -> Order | None:
    """Move a PENDING_NEW order to SUBMITTED and append its ``OrderSubmitted`` event,
    in one atomic statement that takes the row lock itself. The order (with its
    instrument, account and venue) as marked, or None when it is not PENDING_NEW (a
    second delivery of the submit task, a cancel first): nothing written."""
    now = timezone.now()
    event = OrderEvent(
        kind=lc.OrderSubmitted.kind,
        source="worker",
        status=_SUBMITTED,
        payload=payload,
        late=False,
        created_at=now,
    )
    # the event's sequence and its order's head are read (and the event sealed) in the
    # statement: the chain's rule as SQL (audit.chain.link_sql)
    params: list[Any] = [
        _SUBMITTED, now, chain.event_body(event), order_id, lc.OrderStatus.PENDING_NEW.value
    ]  # fmt: skip
    params += _prepared_values(event, _concrete(OrderEvent, skip=_FROM_MARKED_ORDER))
    with _cursor() as cursor:
        cursor.execute(_mark_sql(), params)
        row = cursor.fetchone()
    return None if row is None else _hydrate(row)


# The event columns the mark takes from the order it marked (its chain included); the
# others are the event's own values (each new column's default included).
_FROM_MARKED_ORDER = ("order", "sequence", "status", "prev_hash", "hash")


def _submitted_status() -> str:
    """What the lifecycle makes of a PENDING_NEW order that is sent: SUBMITTED, with no
    other field changed (the mark writes just the status)."""
    before = lc.OrderState(status=lc.OrderStatus.PENDING_NEW, quantity=Decimal(1), price=None)
    after = lc.apply(before, lc.OrderSubmitted()).state
    assert after.status != before.status
    assert _state_values(after) | {"status": before.status.value} == _state_values(before)
    return after.status.value


_SUBMITTED = _submitted_status()


# --- statements, built from the models' metadata ---------------------------------------


def _cursor() -> Any:
    """A Django cursor (errors, query logging and wrappers as usual) over a psycopg cursor
    that binds parameters on the server, so psycopg prepares each of these statements on
    a connection once it has run a few times there (``prepare_threshold``). They run for
    every order, and planning them cost about as much as running them (docs/BENCHMARKS.md).
    Django's own cursors bind on the client, which never prepares."""
    connection.ensure_connection()
    return connection._prepare_cursor(psycopg.Cursor(connection.connection))  # type: ignore[attr-defined]


_q = sr.q
_RELATED = ("instrument", "account", "venue")  # joined with every order read here


@functools.cache
def _layout() -> tuple[sr.Part, ...]:
    return (sr.part(Order), sr.part(Instrument), sr.part(Account), sr.part(Venue))


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
    assert isinstance(order, Order)
    return order


@functools.cache
def _lock_sql() -> str:
    return f"{_select_from(sr.table(Order))} WHERE o.{sr.pk(Order)} = %s FOR UPDATE OF o"


def _lock(order_id: int) -> Order:
    with _cursor() as cursor:
        cursor.execute(_lock_sql(), [order_id])
        row = cursor.fetchone()
    if row is None:
        raise Order.DoesNotExist(f"order {order_id} does not exist")
    return _hydrate(row)


def _typed(fields: Sequence[models.Field[Any, Any]]) -> str:
    """Placeholders cast to their columns' types, so a NULL or a literal in a SELECT list
    or a VALUES row gets its column's type."""
    return ", ".join(f"CAST(%s AS {f.cast_db_type(connection)})" for f in fields)  # type: ignore[attr-defined]


def _prepared_values(
    instance: models.Model, fields: Sequence[models.Field[Any, Any]], *, add: bool = True
) -> list[Any]:
    """As ``save()`` prepares them: ``pre_save`` (auto_now_add, defaults), then
    ``get_db_prep_save``."""
    return [f.get_db_prep_save(f.pre_save(instance, add=add), connection) for f in fields]


def _concrete(model: type[models.Model], *, skip: Sequence[str] = ()) -> tuple[Any, ...]:
    return tuple(f for f in model._meta.concrete_fields if not f.primary_key and f.name not in skip)


@functools.cache
def _insert_sql() -> str:
    order_fields, event_fields = _concrete(Order), _concrete(OrderEvent, skip=("order",))
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


def _insert(order: Order, event: OrderEvent) -> None:
    """INSERT ``order`` and its first ``event`` in one statement; both become saved
    instances with their primary keys. A duplicate ``client_order_id`` raises
    ``IntegrityError``, as ``create()`` would."""
    order.event_hash = chain.seal(event, GENESIS)
    params = _prepared_values(order, _concrete(Order)) + _prepared_values(
        event, _concrete(OrderEvent, skip=("order",))
    )
    with _cursor() as cursor:
        cursor.execute(_insert_sql(), params)
        order_id, event_id = cursor.fetchone()
    for obj, pk in ((order, order_id), (event, event_id)):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias
    event.order = order  # sets order_id now that the order has one


@functools.cache
def _mark_sql() -> str:
    """Parameters: new status, now, the event's body (``chain.event_body``), order id,
    expected status, then the event's own columns
    (``_concrete(OrderEvent, skip=_FROM_MARKED_ORDER)``). The order's row is locked by
    the sub-select (which gives its head hash before the update, the event's prev_hash)."""
    t = sr.table(Order)
    o = {f.name: _q(f.column) for f in Order._meta.concrete_fields}
    ev = {f.name: _q(f.column) for f in OrderEvent._meta.concrete_fields}
    own = _concrete(OrderEvent, skip=_FROM_MARKED_ORDER)
    order_cols = ", ".join(f"{t}.{_q(c)}" for c in sr.part(Order).columns)
    event_cols = ", ".join(
        [ev["order"], ev["sequence"], ev["status"], ev["prev_hash"], ev["hash"]]
        + [_q(f.column) for f in own]
    )
    sealed = link_sql(
        f"{t}.{o['event_hash']}",
        f"CAST({t}.{o['event_sequence']} + 1 AS text)",
        "CAST(%s AS text)",
    )
    return (
        f"WITH o AS ("
        f"UPDATE {t} SET {o['status']} = %s, "
        f"{o['event_sequence']} = {t}.{o['event_sequence']} + 1, {o['updated_at']} = %s, "
        f"{o['event_hash']} = {sealed} "
        f"FROM (SELECT {o['id']} AS locked_id, {o['event_hash']} AS locked_hash FROM {t} "
        f"WHERE {o['id']} = %s AND {o['status']} = %s FOR UPDATE) AS locked "
        f"WHERE {t}.{o['id']} = locked.locked_id "
        f"RETURNING {order_cols}, locked.locked_hash), "
        f"e AS (INSERT INTO {sr.table(OrderEvent)} ({event_cols}) "
        f"SELECT o.{o['id']}, o.{o['event_sequence']}, o.{o['status']}, o.locked_hash, "
        f"o.{o['event_hash']}, {_typed(own)} FROM o) "
        f"{_select_from('o')}"
    )


@functools.cache
def _insert_rows_sql(name: str, model: type[models.Model], n: int) -> str:
    """A data-modifying CTE inserting ``n`` rows of ``model`` only if ``o`` (the guarded
    UPDATE) changed a row; values cast to their column types."""
    fields = _concrete(model)
    cols = ", ".join(_q(f.column) for f in fields)
    conflict = " ON CONFLICT DO NOTHING" if model is VenueOrderRef else ""  # a repeated ack
    rows = ", ".join([f"({_typed(fields)})"] * n)
    return (
        f", {name} AS (INSERT INTO {sr.table(model)} ({cols}) "
        f"SELECT v.* FROM (VALUES {rows}) AS v({cols}) CROSS JOIN o{conflict})"
    )


def _write(
    order: Order,
    *,
    expected_sequence: int,
    fields: Sequence[str],
    events: Sequence[OrderEvent],
    refs: Sequence[VenueOrderRef],
) -> bool:
    """Write ``order``'s ``fields``, its new ``events`` and venue ``refs`` in one
    statement, if its event sequence in the database is ``expected_sequence``."""
    params: list[Any] = []
    sets = []
    for name in fields:
        f = Order._meta.get_field(name)
        assert isinstance(f, models.Field)
        sets.append(f"{_q(f.column)} = %s")
        params.append(f.get_db_prep_save(getattr(order, f.attname), connection))
    pk, seq = sr.pk(Order), sr.column(Order, "event_sequence")
    sql = (
        f"WITH o AS (UPDATE {sr.table(Order)} SET {', '.join(sets)} "
        f"WHERE {pk} = %s AND {seq} = %s RETURNING {pk})"
    )
    params += [order.pk, expected_sequence]
    for name, rows in (("e", events), ("r", refs)):
        if rows:
            model = type(rows[0])
            sql += _insert_rows_sql(name, model, len(rows))
            for obj in rows:
                params += _prepared_values(obj, _concrete(model))
    sql += " SELECT count(*) FROM o"
    with _cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return bool(row and row[0])
