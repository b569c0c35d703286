"""Order services against real PostgreSQL: execution reports, fills, positions."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from orders import services
from orders.models import Fill, Order, Position
from orders.reports import ExecutionReport, ReportKind

pytestmark = pytest.mark.django_db


@pytest.fixture
def ref(db):
    from omsweb.demo import ensure_reference_data
    from orders.models import Account, Instrument
    from venues.models import Venue

    ensure_reference_data()
    return {
        "account": Account.objects.get(code="DEMO"),
        "btc": Instrument.objects.get(symbol="BTC/USDT"),
        "venue": Venue.objects.get(name="sim-a"),
    }


def _submitted(ref, django_capture_on_commit_callbacks, **kw) -> Order:
    args = {
        "user": None,
        "account": ref["account"],
        "instrument": ref["btc"],
        "side": "buy",
        "type": "limit",
        "quantity": D("1"),
        "price": D("100.00"),
        "venue": ref["venue"],
    }
    args.update(kw)
    order = services.order_submit(**args).order
    assert services.order_mark_submitted(order_id=order.pk) is not None
    return order


def _fill(trade_id: str, qty: str, price: str, **kw) -> ExecutionReport:
    return ExecutionReport(
        kind=ReportKind.FILL,
        trade_id=trade_id,
        quantity=D(qty),
        price=D(price),
        venue_order_id="v1",
        **kw,
    )


def test_ack_then_accepted_and_venue_id_linked(ref, django_capture_on_commit_callbacks):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    services.execution_apply(
        order_id=order.pk, report=ExecutionReport(kind=ReportKind.ACK, venue_order_id="v1")
    )
    order.refresh_from_db()
    assert order.status == "ACCEPTED" and order.venue_order_id == "v1"
    found = services.find_order(venue_id=ref["venue"].pk, venue_order_id="v1")
    assert found is not None and found.pk == order.pk


def test_partial_then_full_fill_then_filled_with_vwap_and_position(
    ref, django_capture_on_commit_callbacks
):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    services.execution_apply(order_id=order.pk, report=_fill("t1", "0.4", "100"))
    order.refresh_from_db()
    assert order.status == "PARTIALLY_FILLED" and order.leaves_quantity == D("0.6")
    services.execution_apply(
        order_id=order.pk, report=_fill("t2", "0.6", "101", fee=D("0.0006"), fee_currency="BTC")
    )
    order.refresh_from_db()
    assert order.status == "FILLED"
    assert order.filled_quantity == D("1")
    assert order.average_price == D("100.6")
    position = Position.objects.get(account=ref["account"], instrument=ref["btc"])
    assert position.quantity == D("1") and position.average_price == D("100.6")
    assert position.fees == D("0.0606")  # 0.0006 BTC at 101


def test_same_fill_twice_then_applied_once(ref, django_capture_on_commit_callbacks):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    first = services.execution_apply(order_id=order.pk, report=_fill("t1", "0.5", "100"))
    second = services.execution_apply(order_id=order.pk, report=_fill("t1", "0.5", "100"))
    assert first.applied and not second.applied and second.duplicate
    order.refresh_from_db()
    assert order.filled_quantity == D("0.5")
    assert Fill.objects.filter(order=order).count() == 1
    position = Position.objects.get(account=ref["account"], instrument=ref["btc"])
    assert position.quantity == D("0.5")


def test_fill_after_cancel_then_applied_once_and_flagged_late(
    ref, django_capture_on_commit_callbacks
):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    services.execution_apply(
        order_id=order.pk, report=ExecutionReport(kind=ReportKind.ACK, venue_order_id="v1")
    )
    services.execution_apply(order_id=order.pk, report=ExecutionReport(kind=ReportKind.CANCELED))
    result = services.execution_apply(order_id=order.pk, report=_fill("late-1", "0.2", "99"))
    again = services.execution_apply(order_id=order.pk, report=_fill("late-1", "0.2", "99"))
    order.refresh_from_db()
    assert result.applied and result.late and again.duplicate
    assert order.status == "CANCELED" and order.filled_quantity == D("0.2")
    assert Fill.objects.get(order=order).late is True
    assert order.events.filter(kind="OrderFilled", late=True).count() == 1


def test_reject_then_rejected_with_reason(ref, django_capture_on_commit_callbacks):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    services.execution_apply(
        order_id=order.pk,
        report=ExecutionReport(kind=ReportKind.REJECT, reason="insufficient balance"),
    )
    order.refresh_from_db()
    assert order.status == "REJECTED" and order.reason == "insufficient balance"


def test_report_the_state_machine_refuses_then_recorded_not_applied(
    ref, django_capture_on_commit_callbacks
):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    services.execution_apply(
        order_id=order.pk, report=ExecutionReport(kind=ReportKind.REJECT, reason="no")
    )
    result = services.execution_apply(order_id=order.pk, report=_fill("t9", "1", "100"))
    order.refresh_from_db()
    assert not result.applied and order.status == "REJECTED" and order.filled_quantity == 0
    assert order.events.filter(kind="ReportIgnored").count() == 1


def test_cancel_before_sent_then_canceled_and_submit_is_noop(
    ref, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order = services.order_submit(
            user=None,
            account=ref["account"],
            instrument=ref["btc"],
            side="buy",
            type="limit",
            quantity=D("1"),
            price=D("100.00"),
        ).order
    import redis
    from django.conf import settings

    queue = redis.Redis.from_url(settings.REDIS_URL)
    queue.delete("oms.orders")
    for callback in callbacks:  # the submit task is enqueued by an on-commit hook only
        callback()
    assert any(str(order.pk).encode() in m for m in queue.lrange("oms.orders", 0, -1))
    services.order_cancel(order_id=order.pk)
    assert services.order_mark_submitted(order_id=order.pk) is None
    order.refresh_from_db()
    assert order.status == "CANCELED"


def test_events_are_a_gapless_sequence(ref, django_capture_on_commit_callbacks):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    services.execution_apply(
        order_id=order.pk, report=ExecutionReport(kind=ReportKind.ACK, venue_order_id="v1")
    )
    services.execution_apply(order_id=order.pk, report=_fill("t1", "1", "100"))
    seqs = list(order.events.order_by("sequence").values_list("sequence", "kind"))
    assert seqs == [
        (1, "OrderCreated"),
        (2, "OrderSubmitted"),
        (3, "OrderAccepted"),
        (4, "OrderFilled"),
    ]


def test_buy_then_sell_then_realized_pnl(ref, django_capture_on_commit_callbacks):
    buy = _submitted(ref, django_capture_on_commit_callbacks, client_order_id="b1")
    services.execution_apply(order_id=buy.pk, report=_fill("t1", "1", "100"))
    sell = _submitted(
        ref, django_capture_on_commit_callbacks, client_order_id="s1", side="sell",
        price=D("110.00"),
    )  # fmt: skip
    services.execution_apply(
        order_id=sell.pk,
        report=ExecutionReport(
            kind=ReportKind.FILL, trade_id="t2", quantity=D("1"), price=D("110")
        ),
    )
    position = Position.objects.get(account=ref["account"], instrument=ref["btc"])
    assert position.quantity == 0 and position.realized_pnl == D("10")
