"""The tamper-evident audit trail (issue 13, item 6) against real PostgreSQL: every
order's events are chained by the one writer, risk, venue and operator changes are
chained in the audit streams, and ``oms audit verify`` names the first record that was
altered, removed or inserted, including when a whole chain was recomputed (checkpoints
and exported heads)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.utils import timezone

from audit.chain import link
from audit.models import AuditRecord, AuditStream
from audit.trail import export_heads
from audit.verify import parse_heads, verify_exported, verify_streams
from orders import chain, engine, writer
from orders.domain import lifecycle as lc
from orders.domain.commands import SubmitOrder
from orders.models import Order, OrderEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def ref(db):
    from omsweb.demo import ensure_reference_data
    from omsweb.redis_client import client
    from orders.models import Account, Instrument
    from risk.engine import mark_key
    from venues.models import Venue

    ensure_reference_data()
    client().delete(mark_key("BTC/USDT"))
    return {
        "account": Account.objects.get(code="DEMO"),
        "btc": Instrument.objects.get(symbol="BTC/USDT"),
        "venue": Venue.objects.get(name="sim-a"),
    }


def _order(ref, n: int = 0) -> Order:
    """An order through every write path of the writer: insert, mark, locked apply and
    note, with a fill."""
    order = engine.execute(
        SubmitOrder(
            account=ref["account"].code,
            symbol="BTC/USDT",
            side="buy",
            type="limit",
            quantity=D("1.5"),
            price=D("100.25"),
            venue=ref["venue"].name,
        )
    ).order
    assert writer.mark_submitted(order.pk, payload={"enqueued_at": 1234.5 + n}) is not None
    with writer.locked(order.pk) as w:
        w.apply(lc.OrderAccepted(venue_order_id=f"v{order.pk}"), source="venue", payload={})
        w.note("Noted", source="admin", payload={"why": "a test", "n": 1e20, "q": "0.10"})
    return order


def _sql(statement: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _event_table() -> str:
    return OrderEvent._meta.db_table


def _record(stream: str = "test", n: int = 3) -> None:
    import audit

    for i in range(n):
        audit.record(stream, "limit.updated", "risk-1", {"value": D(i) / 4, "reason": f"r{i}"})


def _checkpoint_now() -> dict:
    done = chain.checkpoint(now=timezone.now() + chain.CHECKPOINT_LAG + timedelta(seconds=1))
    assert done is not None
    return done


# --- an untouched trail -------------------------------------------------------------------


def test_an_untouched_trail_verifies_clean(ref):
    orders = [_order(ref, n) for n in range(3)]
    from orders.domain.errors import OrderRiskDenied

    with pytest.raises(OrderRiskDenied):  # created and denied in one transaction
        engine.execute(SubmitOrder(account="DEMO", symbol="BTC/USDT", side="buy", type="limit",
                                   quantity=D("1000000"), price=D("100"), venue="sim-a"))  # fmt: skip
    assert OrderEvent.objects.filter(kind="OrderDenied").count() == 1
    _record()
    _checkpoint_now()
    assert chain.verify() == []
    events = OrderEvent.objects.filter(order=orders[0]).order_by("sequence")
    assert [e.kind for e in events] == [
        "OrderCreated", "OrderSubmitted", "OrderAccepted", "Noted"
    ]  # fmt: skip
    # each event links to the one before it; the order row holds the head
    prev = "0" * 64
    for e in events:
        assert e.prev_hash == prev and len(e.hash) == 64
        prev = e.hash
    orders[0].refresh_from_db()
    assert orders[0].event_hash == prev


def test_the_mark_seals_its_event_in_sql_as_the_rule_says(ref):
    order = _order(ref)
    marked = OrderEvent.objects.get(order=order, sequence=2)
    created = OrderEvent.objects.get(order=order, sequence=1)
    assert marked.prev_hash == created.hash
    assert marked.hash == link(created.hash, "2", chain.event_body(marked))


# --- order events changed by SQL ------------------------------------------------------------


def test_verify_names_an_order_event_altered_by_sql(ref):
    order = _order(ref)
    _order(ref, 1)
    _sql(
        f"UPDATE {_event_table()} SET payload = %s WHERE order_id = %s AND sequence = 2",
        [json.dumps({"enqueued_at": 1.0}), order.pk],
    )
    event_id = OrderEvent.objects.get(order=order, sequence=2).pk
    breaks = chain.verify()
    assert [str(b) for b in breaks] == [
        f"order {order.pk} seq 2 (id {event_id}): altered: its content does not match its hash"
    ]


def test_verify_names_an_order_event_removed_by_sql(ref):
    order = _order(ref)
    _sql(f"DELETE FROM {_event_table()} WHERE order_id = %s AND sequence = 3", [order.pk])
    (found,) = chain.verify()
    assert (found.stream, found.record) == (f"order {order.pk}", "seq 3")
    assert found.problem.startswith("removed")


def test_verify_names_the_last_order_event_removed_by_sql(ref):
    order = _order(ref)
    _sql(f"DELETE FROM {_event_table()} WHERE order_id = %s AND sequence = 4", [order.pk])
    (found,) = chain.verify()
    assert (found.stream, found.record) == (f"order {order.pk}", "seq 4")
    assert "head is seq 4 but its records end at seq 3" in found.problem


def test_verify_names_an_order_event_inserted_by_sql(ref):
    order = _order(ref)
    last = OrderEvent.objects.get(order=order, sequence=4)
    forged = OrderEvent.objects.create(
        order=order, sequence=5, kind="OrderFilled", source="venue", status="FILLED",
        payload={"quantity": "1.5"}, prev_hash=last.hash,
    )  # fmt: skip
    forged.hash = link(last.hash, "5", chain.event_body(forged))  # even with a valid link
    forged.save(update_fields=["hash"])
    (found,) = chain.verify()
    assert str(found) == (
        f"order {order.pk} seq 5 (id {forged.pk}): inserted: after the stream's head (seq 4)"
    )


def test_a_rewritten_order_chain_is_caught_by_its_checkpoint(ref):
    order = _order(ref)
    done = _checkpoint_now()
    # rewrite history with every hash recomputed: the order's own chain holds again
    events = list(OrderEvent.objects.filter(order=order).order_by("sequence"))
    events[2].payload = {"forged": True}
    prev = "0" * 64
    for e in events:
        prev = chain.seal(e, prev)
        e.save(update_fields=["payload", "prev_hash", "hash"])
    Order.objects.filter(pk=order.pk).update(event_hash=prev)
    assert chain.verify_events() == []
    (found,) = chain.verify()
    cp = AuditRecord.objects.get(stream="orders", action="checkpoint")
    assert (found.stream, found.record) == ("audit:orders", f"seq {cp.seq} (id {cp.pk})")
    assert f"ids {done['from_id'] + 1}..{done['to_id']}" in found.problem


def test_a_checkpoint_continues_where_the_last_stopped_and_skips_recent_events(ref):
    _order(ref)
    assert chain.checkpoint() is None  # younger than the lag: not yet anchored
    first = _checkpoint_now()
    assert first["from_id"] == 0 and first["events"] == 4
    assert chain.checkpoint(now=timezone.now() + timedelta(hours=1)) is None  # nothing new
    _order(ref, 1)
    second = _checkpoint_now()
    assert second["from_id"] == first["to_id"] and second["events"] == 4
    assert chain.verify() == []


# --- audit records changed by SQL -----------------------------------------------------------


def _risk_record(seq: int) -> AuditRecord:
    return AuditRecord.objects.get(stream="test", seq=seq)


def test_verify_names_an_audit_record_altered_by_sql(ref):
    _record()
    target = _risk_record(2)
    _sql(
        f"UPDATE {AuditRecord._meta.db_table} SET payload = %s WHERE id = %s",
        [json.dumps({"value": "1000000", "reason": "r1"}), target.pk],
    )
    assert [str(b) for b in verify_streams()] == [
        f"audit:test seq 2 (id {target.pk}): altered: its content does not match its hash"
    ]


def test_verify_names_an_audit_record_removed_by_sql(ref):
    _record()
    _sql(f"DELETE FROM {AuditRecord._meta.db_table} WHERE id = %s", [_risk_record(2).pk])
    (found,) = verify_streams()
    assert (found.stream, found.record) == ("audit:test", "seq 2")
    assert found.problem == "removed: the stream goes from seq 1 to seq 3"


def test_verify_names_an_audit_record_inserted_by_sql(ref):
    _record()
    # inserted in the middle: the later records renumbered to make room
    table = AuditRecord._meta.db_table
    _sql(f"UPDATE {table} SET seq = seq + 1000 WHERE stream = 'test' AND seq >= 2", [])
    _sql(f"UPDATE {table} SET seq = seq - 999 WHERE stream = 'test' AND seq >= 1002", [])
    AuditStream.objects.filter(name="test").update(seq=4)
    first = _risk_record(1)
    forged = AuditRecord(stream="test", seq=2, actor="risk-1", action="limit.updated",
                         payload={"value": "9"}, prev_hash=first.hash)  # fmt: skip
    forged.hash = link(first.hash, "2", forged.body())
    forged.save()
    (found,) = verify_streams()
    moved = _risk_record(3)
    assert str(found) == (
        f"audit:test seq 3 (id {moved.pk}): inserted or a record removed before it: its "
        "prev_hash is not the hash of seq 2"
    )


def test_a_rewritten_stream_is_caught_by_the_heads_exported_before(ref, caplog):
    _record()
    with caplog.at_level(logging.INFO, logger="oms.audit"):
        export_heads()
    exported = parse_heads(caplog.text.splitlines())
    assert ("test", 3, AuditStream.objects.get(name="test").head) in exported
    assert verify_exported(exported) == []
    # rewrite record 2 and every hash after it, and the head: the chain holds again
    records = list(AuditRecord.objects.filter(stream="test").order_by("seq"))
    records[1].payload = {"value": "1000000"}
    prev = records[0].hash
    for r in records[1:]:
        r.prev_hash, r.hash = prev, link(prev, str(r.seq), r.body())
        r.save(update_fields=["payload", "prev_hash", "hash"])
        prev = r.hash
    AuditStream.objects.filter(name="test").update(head=prev)
    assert verify_streams() == []
    (found,) = verify_exported(exported)
    assert (found.stream, found.record) == ("audit:test", "seq 3")
    assert found.problem.startswith("rewritten")


# --- the command and the beat task --------------------------------------------------------------


def test_oms_audit_verify_exits_non_zero_on_a_break(ref, monkeypatch, capsys, tmp_path):
    from omsweb import cli

    monkeypatch.setattr(cli, "_prepare_env", lambda: None)
    monkeypatch.setattr(cli, "_django", lambda: None)
    order = _order(ref)
    _record()
    log = tmp_path / "oms.log"
    head = AuditStream.objects.get(name="test")
    log.write_text(f"x INFO oms.audit: event=audit_head stream=test seq=3 hash={head.head}\n")
    with pytest.raises(SystemExit) as clean:
        cli.main(["audit", "verify", "--heads", str(log)])
    assert clean.value.code == 0
    assert "every chain holds; 1 exported head(s) checked" in capsys.readouterr().out
    _sql(f"UPDATE {_event_table()} SET kind = 'OrderFilled' WHERE order_id = %s AND sequence = 3",
         [order.pk])  # fmt: skip
    with pytest.raises(SystemExit) as broken:
        cli.main(["audit", "verify"])
    assert broken.value.code == 1
    out = capsys.readouterr().out
    assert f"BROKEN order {order.pk} seq 3" in out and "altered" in out


def test_the_beat_task_anchors_and_logs_every_head(ref, monkeypatch, caplog):
    from orders.tasks import audit_checkpoint

    monkeypatch.setattr(chain, "CHECKPOINT_LAG", timedelta(0))
    _order(ref)
    _record()
    with caplog.at_level(logging.INFO, logger="oms.audit"):
        assert audit_checkpoint() == 4
    lines = [r.getMessage() for r in caplog.records if "event=audit_head" in r.getMessage()]
    streams = {line.split()[1] for line in lines}
    assert {"stream=orders", "stream=test"} <= streams
    orders_head = AuditStream.objects.get(name="orders")
    assert f"event=audit_head stream=orders seq={orders_head.seq} hash={orders_head.head}" in lines
    import audit

    assert {h["stream"]: h["hash"] for h in audit.heads()}["orders"] == orders_head.head


def test_the_migration_chains_the_events_written_before_it(ref):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("orders.migrations.0004_audit_chain")
    orders = [_order(ref, n) for n in range(2)]
    # as the rows were before the migration: no hashes
    OrderEvent.objects.update(prev_hash="", hash="")
    Order.objects.update(event_hash="0" * 64)
    assert len(chain.verify_events()) == len(orders)
    migration.chain_existing_events(apps, None)
    assert chain.verify_events() == []


@pytest.mark.django_db(transaction=True)  # two connections, as two workers
def test_a_mark_waiting_on_the_lock_chains_to_the_event_written_meanwhile(ref):
    import threading

    from django.db import connections

    order = engine.execute(
        SubmitOrder(account="DEMO", symbol="BTC/USDT", side="buy", type="limit",
                    quantity=D("1"), price=D("100"), venue="sim-a")
    ).order  # fmt: skip
    marked: list = []

    def mark() -> None:
        try:
            marked.append(writer.mark_submitted(order.pk, payload={"enqueued_at": 1.5}))
        finally:
            connections.close_all()

    with writer.locked(order.pk) as w:
        w.note("OperatorNote", source="admin", payload={"held": True})
        w.flush()
        other = threading.Thread(target=mark)
        other.start()
        other.join(timeout=0.5)
        assert other.is_alive()  # waiting for this transaction's row lock
    other.join(timeout=10)
    assert marked and marked[0] is not None and marked[0].event_sequence == 3
    note, sent = OrderEvent.objects.filter(order=order, sequence__in=(2, 3)).order_by("sequence")
    assert (note.kind, sent.kind) == ("OperatorNote", "OrderSubmitted")
    assert sent.prev_hash == note.hash
    assert chain.verify_events() == []
