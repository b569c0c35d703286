"""The execution engine (orders/engine.py) against real PostgreSQL: commands in,
execution reports in, fills and positions out."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from orders import engine
from orders.domain.commands import CancelOrder, SubmitOrder
from orders.models import Fill, Order, Position
from orders.reports import ExecutionReport, ReportKind
from tests.marking import mark_sent

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


def _args(**kw) -> dict:
    args = {
        "account": "DEMO",
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": D("1"),
        "price": D("100.00"),
        "venue": "sim-a",
    }
    args.update(kw)
    return args


def _submit(**kw) -> Order:
    return engine.execute(SubmitOrder(**_args(**kw))).order


def _submitted(ref, django_capture_on_commit_callbacks, **kw) -> Order:
    order = _submit(**kw)
    assert mark_sent(order.pk) is not None
    return order


def _apply(order_id: int, report: ExecutionReport) -> engine.ApplyResult:
    (result,) = engine.process(order_id, [report])
    return result


def _fill(trade_id: str, qty: str, price: str, **kw) -> ExecutionReport:
    kw.setdefault("venue_order_id", "v1")
    return ExecutionReport(
        kind=ReportKind.FILL, trade_id=trade_id, quantity=D(qty), price=D(price), **kw
    )


def test_ack_then_accepted_and_venue_id_linked(ref, django_capture_on_commit_callbacks):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    _apply(order.pk, ExecutionReport(kind=ReportKind.ACK, venue_order_id="v1"))
    order.refresh_from_db()
    assert order.status == "ACCEPTED" and order.venue_order_id == "v1"
    found = engine.find_order(venue_id=ref["venue"].pk, symbol="BTC/USDT", venue_order_id="v1")
    assert found is not None and found.pk == order.pk


def test_same_venue_ids_on_two_symbols_then_each_order_found_and_filled(
    ref, django_capture_on_commit_callbacks
):
    """Venues such as Binance number orders and trades per symbol: the same ids on
    another symbol of the same venue are another order and another trade."""
    # Arrange
    btc = _submitted(ref, django_capture_on_commit_callbacks)
    eth = _submitted(
        ref,
        django_capture_on_commit_callbacks,
        symbol="ETH/USDT",
        quantity=D("1"),
        price=D("3000.00"),
    )
    for order in (btc, eth):
        _apply(order.pk, ExecutionReport(kind=ReportKind.ACK, venue_order_id="7"))
    # Act
    results = [
        _apply(o.pk, _fill("42", "0.5", str(o.price), venue_order_id="7")) for o in (btc, eth)
    ]
    # Assert
    assert [r.applied for r in results] == [True, True]
    venue_id = ref["venue"].pk
    assert engine.find_order(venue_id=venue_id, symbol="BTC/USDT", venue_order_id="7").pk == btc.pk
    assert engine.find_order(venue_id=venue_id, symbol="ETH/USDT", venue_order_id="7").pk == eth.pk
    assert Fill.objects.filter(venue_trade_id="42").count() == 2


def test_partial_then_full_fill_then_filled_with_vwap_and_position(
    ref, django_capture_on_commit_callbacks
):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    _apply(order.pk, _fill("t1", "0.4", "100"))
    order.refresh_from_db()
    assert order.status == "PARTIALLY_FILLED" and order.leaves_quantity == D("0.6")
    _apply(order.pk, _fill("t2", "0.6", "101", fee=D("0.0006"), fee_currency="BTC"))
    order.refresh_from_db()
    assert order.status == "FILLED"
    assert order.filled_quantity == D("1")
    assert order.average_price == D("100.6")
    position = Position.objects.get(account=ref["account"], instrument=ref["btc"])
    assert position.quantity == D("1") and position.average_price == D("100.6")
    assert position.fees == D("0.0606")  # 0.0006 BTC at 101


def test_same_fill_twice_then_applied_once(ref, django_capture_on_commit_callbacks):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    first = _apply(order.pk, _fill("t1", "0.5", "100"))
    second = _apply(order.pk, _fill("t1", "0.5", "100"))
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
    _apply(order.pk, ExecutionReport(kind=ReportKind.ACK, venue_order_id="v1"))
    _apply(order.pk, ExecutionReport(kind=ReportKind.CANCELED))
    result = _apply(order.pk, _fill("late-1", "0.2", "99"))
    again = _apply(order.pk, _fill("late-1", "0.2", "99"))
    order.refresh_from_db()
    assert result.applied and result.late and again.duplicate
    assert order.status == "CANCELED" and order.filled_quantity == D("0.2")
    assert Fill.objects.get(order=order).late is True
    assert order.events.filter(kind="OrderFilled", late=True).count() == 1


def test_reject_then_rejected_with_reason(ref, django_capture_on_commit_callbacks):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    _apply(
        order.pk,
        ExecutionReport(kind=ReportKind.REJECT, reason="insufficient balance"),
    )
    order.refresh_from_db()
    assert order.status == "REJECTED" and order.reason == "insufficient balance"


def test_report_the_state_machine_refuses_then_recorded_not_applied(
    ref, django_capture_on_commit_callbacks
):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    _apply(order.pk, ExecutionReport(kind=ReportKind.REJECT, reason="no"))
    result = _apply(order.pk, _fill("t9", "1", "100"))
    order.refresh_from_db()
    assert not result.applied and order.status == "REJECTED" and order.filled_quantity == 0
    assert order.events.filter(kind="ReportIgnored").count() == 1


def test_cancel_before_sent_then_canceled_and_submit_is_noop(
    ref, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order = _submit()
    import redis
    from django.conf import settings

    queue = redis.Redis.from_url(settings.REDIS_URL)
    queue.delete("oms.orders.sim-a")
    for callback in callbacks:  # the submit task is enqueued by an on-commit hook only
        callback()
    assert any(str(order.pk).encode() in m for m in queue.lrange("oms.orders.sim-a", 0, -1))
    canceled = engine.execute(CancelOrder(order_id=order.pk))
    assert canceled.status == "CANCELED"
    assert mark_sent(order.pk) is None
    order.refresh_from_db()
    assert order.status == "CANCELED"


def test_events_are_a_gapless_sequence(ref, django_capture_on_commit_callbacks):
    order = _submitted(ref, django_capture_on_commit_callbacks)
    _apply(order.pk, ExecutionReport(kind=ReportKind.ACK, venue_order_id="v1"))
    _apply(order.pk, _fill("t1", "1", "100"))
    seqs = list(order.events.order_by("sequence").values_list("sequence", "kind"))
    assert seqs == [
        (1, "OrderCreated"),
        (2, "OrderSubmitted"),
        (3, "OrderAccepted"),
        (4, "OrderFilled"),
    ]


def test_buy_then_sell_then_realized_pnl(ref, django_capture_on_commit_callbacks):
    buy = _submitted(ref, django_capture_on_commit_callbacks, client_order_id="b1")
    _apply(buy.pk, _fill("t1", "1", "100"))
    sell = _submitted(
        ref, django_capture_on_commit_callbacks, client_order_id="s1", side="sell",
        price=D("110.00"),
    )  # fmt: skip
    _apply(
        sell.pk,
        ExecutionReport(kind=ReportKind.FILL, trade_id="t2", quantity=D("1"), price=D("110")),
    )
    position = Position.objects.get(account=ref["account"], instrument=ref["btc"])
    assert position.quantity == 0 and position.realized_pnl == D("10")


def test_same_client_order_id_then_replayed_and_other_fields_then_conflict(ref):
    from orders.domain.errors import OrderConflict

    first = engine.execute(SubmitOrder(**_args(client_order_id="same-1")))
    again = engine.execute(SubmitOrder(**_args(client_order_id="same-1")))
    assert first.created and not again.created and again.order.pk == first.order.pk
    with pytest.raises(OrderConflict) as err:
        engine.execute(SubmitOrder(**_args(client_order_id="same-1", quantity=D("2"))))
    assert err.value.field == "client_order_id" and err.value.status_code == 409
    assert Order.objects.filter(client_order_id="same-1").count() == 1


def test_unknown_references_and_bad_input_then_validation_errors_naming_the_field(ref):
    from orders.domain.errors import OmsError, OrderValidationError

    with pytest.raises(OrderValidationError) as err:
        engine.execute(SubmitOrder(**_args(account="NOPE", symbol="XYZ/USDT", venue="nowhere")))
    assert err.value.field == "account"
    assert set(err.value.fields) == {"account", "symbol", "venue"}
    for bad, field in (
        ({"price": None}, "price"),  # a limit order needs a price
        ({"type": "market"}, "price"),  # a market order takes none
        ({"quantity": D("1.000000001")}, "quantity"),  # off the lot size
    ):
        with pytest.raises(OrderValidationError) as err:
            engine.execute(SubmitOrder(**_args(**bad)))
        assert err.value.field == field, bad
        assert isinstance(err.value, OmsError) and err.value.code == "VALIDATION_ERROR"
    assert not Order.objects.exists()


def test_cancel_all_moves_open_orders_and_skips_finished_ones(ref):
    from orders.domain.commands import CancelAll

    not_sent = _submit()
    working = _submitted(ref, None)
    _apply(working.pk, ExecutionReport(kind=ReportKind.ACK, venue_order_id="v1"))
    rejected = _submitted(ref, None)
    _apply(rejected.pk, ExecutionReport(kind=ReportKind.REJECT, reason="no"))
    done = engine.execute(CancelAll(order_ids=(not_sent.pk, working.pk, rejected.pk)))
    assert done == [not_sent.pk, working.pk]
    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {
        not_sent.pk: "CANCELED",
        working.pk: "PENDING_CANCEL",
        rejected.pk: "REJECTED",
    }
    assert engine.execute(CancelAll(order_ids=(working.pk,))) == []  # already pending


def test_modify_then_pending_replace_and_replaced_with_the_new_quantity(ref):
    from orders.domain.commands import ModifyOrder
    from orders.domain.errors import OrderStateConflict, OrderValidationError

    order = _submitted(ref, None)
    with pytest.raises(OrderStateConflict):  # not at the venue yet
        engine.execute(ModifyOrder(order_id=order.pk, quantity=D("2")))
    _apply(order.pk, ExecutionReport(kind=ReportKind.ACK, venue_order_id="v1"))
    with pytest.raises(OrderValidationError):
        engine.execute(ModifyOrder(order_id=order.pk))  # nothing to change
    amended = engine.execute(ModifyOrder(order_id=order.pk, quantity=D("2")))
    assert amended.status == "PENDING_REPLACE"
    _apply(order.pk, ExecutionReport(kind=ReportKind.REPLACED, quantity=D("2")))
    order.refresh_from_db()
    assert (order.status, order.quantity, order.amend_count) == ("ACCEPTED", D("2"), 1)
