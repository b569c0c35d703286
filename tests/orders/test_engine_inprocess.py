"""The execution engine in-process: real engine, lifecycle, writer, risk and database;
a scripted fake venue and a test clock (tests/orders/engine_harness.py). No processes,
no HTTP. Each test checks the order's state, its events in sequence and what reached
the venue."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest

from orders import engine, tasks, venue_calls
from orders.domain.commands import CancelOrder
from orders.models import Fill, Order, Position, UnknownVenueOrder
from orders.reconcile import reconcile_venue
from orders.reports import fill_report
from tests.orders.engine_harness import Harness, ack, fill, in_doubt, installed, reject
from venues.base import VenueOrderStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def harness(transactional_db, monkeypatch):
    """Real commits, so ``engine.dispatch`` runs on commit as in production."""
    yield from installed(monkeypatch)


SUBMITTED = ["OrderCreated", "OrderSubmitted"]
ACCEPTED = [*SUBMITTED, "OrderAccepted"]


def history(order: Order) -> list[tuple[str, str]]:
    """(kind, status after it) of the order's events, in sequence."""
    return list(order.events.order_by("sequence").values_list("kind", "status"))


def kinds(order: Order) -> list[str]:
    return [kind for kind, _ in history(order)]


def working(h: Harness) -> Order:
    """A 0.01 BTC/USDT buy at 60000, acknowledged by the venue."""
    order = h.submit()
    h.run_queued()
    order = h.reload(order)
    assert order.status == "ACCEPTED"
    return order


def position() -> Position:
    return Position.objects.get(account__code="DEMO", instrument__symbol="BTC/USDT")


# --- submit --------------------------------------------------------------------------


def test_submit_when_venue_acks_then_accepted(harness):
    # Arrange
    harness.venue.on_submit(ack())
    order = harness.submit()
    assert order.status == "PENDING_NEW"
    assert harness.tasks_queued() == ["oms.orders.submit"]
    # Act
    outcomes = harness.run_queued()
    # Assert
    order = harness.reload(order)
    assert [o.done for o in outcomes] == [True]
    assert order.status == "ACCEPTED"
    assert order.venue_order_id == harness.venue.book[order.client_order_id].venue_order_id
    assert history(order) == [
        ("OrderCreated", "PENDING_NEW"),
        ("OrderSubmitted", "SUBMITTED"),
        ("OrderAccepted", "ACCEPTED"),
    ]
    (call,) = harness.venue.requests
    assert call.method == "submit_order"
    assert call.request.client_order_id == order.client_order_id
    assert (call.request.quantity, call.request.price) == (D("0.01"), D("60000"))
    assert call.request.time_in_force == "GTC"
    assert harness.tasks_queued() == []


def test_submit_when_venue_rejects_then_rejected_with_reason(harness):
    # Arrange
    harness.venue.on_submit(reject("insufficient balance"))
    order = harness.submit()
    # Act
    outcomes = harness.run_queued()
    # Assert
    order = harness.reload(order)
    assert [o.done for o in outcomes] == [True]
    assert order.status == "REJECTED"
    assert order.reason == "insufficient balance"
    assert kinds(order) == [*SUBMITTED, "OrderRejected"]
    assert harness.venue.methods() == ["submit_order"]
    assert harness.venue.book == {}
    assert harness.tasks_queued() == []


def test_partial_fill_then_full_fill_when_venue_trades_then_filled_with_vwap_and_position(
    harness,
):
    # Arrange: the venue fills 0.004 at once, the rest later (reported by its stream)
    harness.venue.on_submit(fill("0.004", "60000"))
    order = harness.submit()
    harness.run_queued()
    partial = harness.reload(order)
    # Act
    trade = harness.venue.trade(order.client_order_id, "0.006", "60010")
    (result,) = engine.process(order.pk, [fill_report(trade, source="stream")])
    # Assert
    assert (partial.status, partial.filled_quantity) == ("PARTIALLY_FILLED", D("0.004"))
    assert partial.average_price == D("60000")
    order = harness.reload(order)
    assert result.applied
    assert order.status == "FILLED"
    assert order.filled_quantity == D("0.01")
    assert order.average_price == D("60006")  # (0.004*60000 + 0.006*60010) / 0.01
    assert history(order) == [
        ("OrderCreated", "PENDING_NEW"),
        ("OrderSubmitted", "SUBMITTED"),
        ("OrderAccepted", "ACCEPTED"),
        ("OrderFilled", "PARTIALLY_FILLED"),
        ("OrderFilled", "FILLED"),
    ]
    assert sorted(order.fills.values_list("quantity", "price")) == [
        (D("0.004"), D("60000")),
        (D("0.006"), D("60010")),
    ]
    assert (position().quantity, position().average_price) == (D("0.01"), D("60006"))
    assert harness.venue.methods() == ["submit_order"]


def test_ioc_when_venue_fills_part_then_remainder_canceled(harness):
    # Arrange
    harness.venue.on_submit(fill("0.004", "60000"))
    order = harness.submit(time_in_force="IOC")
    # Act
    harness.run_queued()
    # Assert
    order = harness.reload(order)
    assert order.status == "CANCELED"
    assert order.filled_quantity == D("0.004")
    assert order.reason == "IOC remainder canceled"
    assert kinds(order) == [*ACCEPTED, "OrderFilled", "OrderCanceled"]
    assert position().quantity == D("0.004")
    assert harness.venue.calls("submit_order")[0].request.time_in_force == "IOC"
    assert harness.venue.methods() == ["submit_order"]  # no cancel needed
    assert harness.tasks_queued() == []


# --- cancel --------------------------------------------------------------------------


def test_cancel_when_order_working_then_pending_cancel_then_canceled(harness):
    # Arrange
    order = working(harness)
    # Act
    pending = engine.execute(CancelOrder(order_id=order.pk, reason="trader"))
    queued = harness.tasks_queued()
    outcomes = harness.run_queued()
    # Assert
    assert pending.status == "PENDING_CANCEL"
    assert queued == ["oms.urgent.cancel"]
    assert [o.done for o in outcomes] == [True]
    order = harness.reload(order)
    assert order.status == "CANCELED"
    assert history(order)[-2:] == [
        ("OrderCancelRequested", "PENDING_CANCEL"),
        ("OrderCanceled", "CANCELED"),
    ]
    assert harness.venue.methods() == ["submit_order", "cancel_order"]
    assert harness.venue.calls("cancel_order")[0].client_order_id == order.client_order_id
    assert harness.venue.book[order.client_order_id].status == VenueOrderStatus.CANCELED


def test_cancel_when_fill_races_it_then_fill_applied_while_pending_cancel_then_canceled(
    harness,
):
    # Arrange: cancel requested; the venue trades before the cancel reaches it
    order = working(harness)
    engine.execute(CancelOrder(order_id=order.pk))
    trade = harness.venue.trade(order.client_order_id, "0.004", "60000")
    # Act: the stream's fill arrives first, then the cancel task runs
    (result,) = engine.process(order.pk, [fill_report(trade, source="stream")])
    racing = harness.reload(order)
    harness.run_queued()
    # Assert
    assert result.applied
    assert (racing.status, racing.filled_quantity) == ("PENDING_CANCEL", D("0.004"))
    order = harness.reload(order)
    assert order.status == "CANCELED"
    assert order.filled_quantity == D("0.004")
    assert history(order) == [
        ("OrderCreated", "PENDING_NEW"),
        ("OrderSubmitted", "SUBMITTED"),
        ("OrderAccepted", "ACCEPTED"),
        ("OrderCancelRequested", "PENDING_CANCEL"),
        ("OrderFilled", "PENDING_CANCEL"),
        ("OrderCanceled", "CANCELED"),
    ]
    # the cancel answer lists the same trade again: booked once
    assert Fill.objects.filter(order=order).count() == 1
    assert position().quantity == D("0.004")
    assert harness.venue.methods() == ["submit_order", "cancel_order"]


def test_cancel_when_venue_rejects_it_then_back_to_accepted(harness):
    # Arrange
    order = working(harness)
    harness.venue.on_cancel(reject("too late to cancel"))
    engine.execute(CancelOrder(order_id=order.pk))
    # Act
    outcomes = harness.run_queued()
    # Assert
    assert [o.done for o in outcomes] == [True]
    order = harness.reload(order)
    assert order.status == "ACCEPTED"
    assert order.prior_status == ""
    assert history(order)[-2:] == [
        ("OrderCancelRequested", "PENDING_CANCEL"),
        ("OrderCancelRejected", "ACCEPTED"),
    ]
    assert harness.venue.methods() == ["submit_order", "cancel_order"]
    assert harness.venue.book[order.client_order_id].status == VenueOrderStatus.NEW
    assert harness.tasks_queued() == []


# --- in doubt ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("venue_did", "status", "filled", "events"),
    [
        (ack(), "ACCEPTED", D("0"), ACCEPTED),
        (fill("0.01", "60000"), "FILLED", D("0.01"), [*ACCEPTED, "OrderFilled"]),
    ],
    ids=["acked", "filled"],
)
def test_submit_in_doubt_when_venue_has_it_then_resolve_settles_from_its_book(
    harness, venue_did, status, filled, events
):
    # Arrange: the venue took the order but its answer was lost
    harness.venue.on_submit(in_doubt(then=venue_did))
    order = harness.submit()
    (doubt,) = harness.run_queued()
    in_doubt_status = harness.reload(order).status
    # Act: the resolve task asks the venue by client order id
    assert harness.tasks_queued() == ["oms.recon.resolve_order"]
    (outcome,) = harness.run_queued()
    # Assert
    assert (doubt.done, doubt.retry_after) == (False, None)
    assert in_doubt_status == "SUBMITTED"
    assert outcome.done
    order = harness.reload(order)
    assert (order.status, order.filled_quantity) == (status, filled)
    assert order.venue_order_id == harness.venue.book[order.client_order_id].venue_order_id
    assert kinds(order) == events
    assert harness.venue.methods() == ["submit_order", "fetch_order"]
    assert harness.tasks_queued() == []


def test_submit_in_doubt_when_venue_never_got_it_then_resent_once_clock_passes_min_age(
    harness,
):
    # Arrange: the request was lost before the venue; the venue never hears of it
    harness.venue.on_submit(in_doubt())
    order = harness.submit()
    harness.run_queued()
    sent_at = harness.reload(order).updated_at
    looks = 0
    while harness.tasks_queued() == ["oms.recon.resolve_order"]:
        harness.run_queued()
        looks += 1
    assert looks == tasks.RESEND_AFTER_LOOKS + 1
    assert harness.tasks_queued() == ["oms.orders.resend"]
    # Act 1: just before the minimum age a resend is not yet safe
    harness.clock.set(sent_at + timedelta(seconds=venue_calls.RESEND_MIN_AGE_S - 0.5))
    (early,) = harness.run_queued()
    early_status = harness.reload(order).status
    submits_before = len(harness.venue.calls("submit_order"))
    # Act 2: at the minimum age the order is claimed and sent again, same client id
    harness.clock.set(sent_at + timedelta(seconds=venue_calls.RESEND_MIN_AGE_S))
    (late,) = harness.run_queued()
    # Assert
    assert (early.done, early.detail) == (False, "resend not yet safe")
    assert early_status == "SUBMITTED"
    assert submits_before == 1
    assert late.done
    order = harness.reload(order)
    assert order.status == "ACCEPTED"
    assert kinds(order) == [*SUBMITTED, "OrderResent", "OrderAccepted"]
    fetches = ["fetch_order"] * (looks + 2)
    assert harness.venue.methods() == ["submit_order", *fetches, "submit_order"]
    first, again = harness.venue.calls("submit_order")
    assert first.request == again.request
    assert harness.tasks_queued() == []


def test_submit_in_doubt_when_venue_never_got_it_and_order_too_old_then_rejected_stale(
    harness,
):
    # Arrange: the request was lost, and the resend comes after a long outage
    harness.venue.on_submit(in_doubt())
    order = harness.submit()
    harness.run_queued()
    while harness.tasks_queued() == ["oms.recon.resolve_order"]:
        harness.run_queued()
    assert harness.tasks_queued() == ["oms.orders.resend"]
    created = harness.reload(order).created_at
    harness.clock.set(created + timedelta(seconds=venue_calls.RESEND_MAX_AGE_S + 1))
    # Act
    (outcome,) = harness.run_queued()
    # Assert: rejected with the reason, never sent a second time
    order = harness.reload(order)
    assert outcome.done
    assert order.status == "REJECTED"
    assert order.reason.startswith("STALE: never reached sim-a")
    assert kinds(order) == [*SUBMITTED, "OrderRejected"]
    assert len(harness.venue.calls("submit_order")) == 1
    assert harness.tasks_queued() == []


# --- duplicates ----------------------------------------------------------------------


def test_fill_when_reported_twice_then_applied_once(harness):
    # Arrange
    order = working(harness)
    trade = harness.venue.trade(order.client_order_id, "0.004", "60000")
    report = fill_report(trade, source="stream")
    # Act
    (first,) = engine.process(order.pk, [report])
    (second,) = engine.process(order.pk, [report])
    # Assert
    assert (first.applied, first.duplicate) == (True, False)
    assert (second.applied, second.duplicate) == (False, True)
    order = harness.reload(order)
    assert (order.status, order.filled_quantity) == ("PARTIALLY_FILLED", D("0.004"))
    assert kinds(order) == [*ACCEPTED, "OrderFilled"]
    assert Fill.objects.filter(order=order).count() == 1
    assert position().quantity == D("0.004")
    assert harness.venue.methods() == ["submit_order"]


# --- reconciliation ------------------------------------------------------------------


def test_reconcile_when_oms_missed_a_fill_then_fill_applied_once(harness):
    # Arrange: the venue trades the order and the report never reaches the OMS
    order = working(harness)
    harness.venue.trade(order.client_order_id, "0.004", "60000")
    # Act
    run = reconcile_venue(order.venue_id)
    again = reconcile_venue(order.venue_id)
    # Assert
    assert (run.status, run.fixed["missed_fills"]) == ("ok", 1)
    assert (again.status, again.fixed["missed_fills"]) == ("ok", 0)
    order = harness.reload(order)
    assert (order.status, order.filled_quantity) == ("PARTIALLY_FILLED", D("0.004"))
    assert kinds(order) == [*ACCEPTED, "OrderFilled"]
    assert order.events.get(kind="OrderFilled").source == "recon"
    assert Fill.objects.filter(order=order).count() == 1
    assert position().quantity == D("0.004")
    assert harness.venue.methods().count("submit_order") == 1
    assert not {"cancel_order", "fetch_order"} & set(harness.venue.methods()[1:])
    assert UnknownVenueOrder.objects.count() == 0


def test_reconcile_when_venue_has_an_order_oms_does_not_know_then_unknown_venue_order(
    harness,
):
    # Arrange: an order placed at the venue behind the OMS's back
    entry = harness.venue.place("manual-1", side="sell", quantity="0.5", price="61000")
    # Act
    run = reconcile_venue(harness.venue_id())
    # Assert
    assert run.status == "ok"
    assert run.found["unknown_at_oms"] == [entry.venue_order_id]
    unknown = UnknownVenueOrder.objects.get()
    assert (unknown.venue_order_id, unknown.client_order_id) == (entry.venue_order_id, "manual-1")
    assert (unknown.side, unknown.quantity, unknown.price) == ("sell", D("0.5"), D("61000"))
    assert unknown.state == UnknownVenueOrder.State.OPEN
    assert Order.objects.count() == 0
    assert set(harness.venue.methods()) == {"fetch_open_orders", "fetch_trades"}


def test_reconcile_when_differences_found_then_counted_and_one_mismatch_alert(harness, caplog):
    from prometheus_client import REGISTRY

    # Arrange: an order behind the OMS's back, and a fill the OMS missed
    harness.venue.place("manual-2", side="sell", quantity="0.5", price="61000")
    order = working(harness)
    harness.venue.trade(order.client_order_id, "0.004", "60000")
    venue = order.venue.name

    def found(kind: str) -> float:
        labels = {"venue": venue, "kind": kind}
        return REGISTRY.get_sample_value("oms_reconciliation_findings_total", labels) or 0.0

    before = {k: found(k) for k in ("unknown_at_oms", "missed_fills")}
    # Act
    with caplog.at_level("WARNING", logger="oms.alerts"):
        run = reconcile_venue(order.venue_id)
    # Assert
    assert found("unknown_at_oms") == before["unknown_at_oms"] + 1
    assert found("missed_fills") == before["missed_fills"] + 1
    (alert,) = [r.getMessage() for r in caplog.records if r.name == "oms.alerts"]
    assert alert == (
        f"event=reconciliation_mismatch venue={venue} run={run.pk} missed_fills=1 unknown_at_oms=1"
    )


# --- client order ids: the client's unique per account, the venue's across accounts ------


def test_submit_same_client_id_in_two_accounts_then_venue_gets_two_ids_of_the_oms(harness):
    # Arrange (issue 13, item 5: the id was unique across all accounts, and sent as is)
    demo = harness.submit(client_order_id="mine-1")
    hedge = harness.submit(client_order_id="mine-1", account="HEDGE")
    # Act
    harness.run_queued()
    # Assert: both accepted; the venue saw two ids, neither the client's
    sent = [c.request.client_order_id for c in harness.venue.calls("submit_order")]
    assert sorted(sent) == sorted([demo.venue_client_order_id, hedge.venue_client_order_id])
    assert len(set(sent)) == 2 and "mine-1" not in sent
    assert {harness.reload(o).status for o in (demo, hedge)} == {"ACCEPTED"}
    assert {harness.reload(o).client_order_id for o in (demo, hedge)} == {"mine-1"}


def test_find_order_by_venue_side_client_id_then_found_before_and_after_amend(harness):
    from orders.domain.commands import ModifyOrder

    order = harness.submit(client_order_id="mine-2")
    harness.run_queued()
    base = order.venue_client_order_id
    venue_id = harness.reload(order).venue_id

    def found(client_id: str) -> int | None:
        hit = engine.find_order(venue_id=venue_id, symbol="BTC/USDT", client_order_id=client_id)
        return hit and hit.pk

    assert found(base) == order.pk
    assert found("mine-2") is None  # the client's id is not what the venue knows
    engine.execute(ModifyOrder(order_id=order.pk, price=D("59990")))
    harness.run_queued()
    amended = harness.reload(order)
    assert amended.venue_client_order_id == f"{base}/1"
    (call,) = harness.venue.calls("amend_order")
    assert call.new_client_order_id == f"{base}/1"  # the amend's new id at the venue
    assert found(f"{base}/1") == order.pk
    assert found(base) == order.pk  # a late report about the replaced order
