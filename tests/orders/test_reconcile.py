"""Reconciliation trusts nothing (issue 12, items 3 and 7): the engine in-process with a
scripted venue (tests/orders/engine_harness.py). Each test forges a difference between
the venue's book and the OMS, runs ``reconcile_venue`` and checks the findings, what
was fixed, and that nothing was closed that should wait for an operator."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal as D

import pytest

from orders import engine
from orders.domain.errors import OrderStateConflict
from orders.models import Fill, Order, ReconFinding, UnknownVenueOrder
from orders.reconcile import confirm_missing, reconcile_venue, resolve_finding, unknown_adopt
from orders.reports import ExecutionReport, ReportKind, fill_report
from risk.models import TradingState, TradingStateChange
from tests.orders.engine_harness import BookEntry, Harness, installed
from venues.base import VenueOrderStatus, VenueTrade

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def harness(transactional_db, monkeypatch):
    yield from installed(monkeypatch)


def working(h: Harness, **fields) -> Order:
    order = h.submit(**fields)
    h.run_queued()
    order = h.reload(order)
    assert order.status == "ACCEPTED"
    return order


def past_grace(h: Harness) -> None:
    """Run the reconciliation as if the orders' last changes were not in flight."""
    h.clock.advance(10)


def findings(**flt) -> list[tuple[str, str, bool]]:
    rows = ReconFinding.objects.filter(**flt).order_by("id")
    return [(f.kind, f.severity, f.resolved_at is None) for f in rows]


def venue_state(h: Harness) -> str:
    row = TradingState.objects.filter(scope="venue", venue_id=h.venue_id()).first()
    return row.state if row else "ACTIVE"


# --- status and filled quantity, whatever the OMS status ---------------------------------


def test_reconcile_when_oms_canceled_but_venue_still_open_then_critical_finding(harness):
    # Arrange: the OMS closed the order (a lost cancel answer), the venue still works it
    order = working(harness)
    engine.process(order.pk, [ExecutionReport(kind=ReportKind.CANCELED, source="venue")])
    past_grace(harness)
    # Act
    run = reconcile_venue(harness.venue_id())
    again = reconcile_venue(harness.venue_id())
    # Assert: one open critical finding, seen by both runs, nothing changed in the OMS
    assert (run.status, again.status) == ("ok", "ok")
    assert findings() == [("STATUS_MISMATCH", "CRITICAL", True)]
    finding = ReconFinding.objects.get()
    assert finding.order_id == order.pk and finding.run_id == again.pk
    assert "is CANCELED in the OMS but NEW at sim-a" in finding.message
    assert harness.reload(order).status == "CANCELED"
    assert not UnknownVenueOrder.objects.exists()
    # the venue cancels it too: the next run no longer sees the difference
    harness.venue.book[order.client_order_id].status = VenueOrderStatus.CANCELED
    reconcile_venue(harness.venue_id())
    finding.refresh_from_db()
    assert finding.resolved_at is not None and finding.resolved_by == "recon"


def test_reconcile_when_oms_filled_by_a_fill_the_venue_never_made_then_two_findings(harness):
    # Arrange: a fill booked in the OMS that the venue has no trade for; the order is
    # FILLED in the OMS and still open (unfilled) at the venue
    order = working(harness)
    ghost = VenueTrade(
        trade_id="ghost-1", venue_order_id=order.venue_order_id, symbol="BTC/USDT",
        side="buy", quantity=D("0.01"), price=D("60000"),
        timestamp=harness.clock() - timedelta(seconds=30),
    )  # fmt: skip
    engine.process(order.pk, [fill_report(ghost, source="venue")])
    assert harness.reload(order).status == "FILLED"
    past_grace(harness)
    # Act
    run = reconcile_venue(harness.venue_id())
    # Assert
    assert run.status == "ok"
    assert sorted(findings()) == [
        ("FILL_MISSING_AT_VENUE", "CRITICAL", True),
        ("STATUS_MISMATCH", "CRITICAL", True),
    ]
    missing = ReconFinding.objects.get(kind="FILL_MISSING_AT_VENUE")
    assert missing.key == "BTC/USDT:ghost-1" and missing.order_id == order.pk
    assert run.found["findings"] == 2


def test_reconcile_when_fill_price_differs_from_the_venue_trade_then_fill_mismatch(harness):
    # Arrange: the venue traded 0.004 @ 60000; the OMS booked the same trade id @ 60001
    order = working(harness)
    harness.clock.advance(-30)
    trade = harness.venue.trade(order.client_order_id, "0.004", "60000")
    harness.clock.advance(30)
    wrong = VenueTrade(**{**trade.__dict__, "price": D("60001")})
    engine.process(order.pk, [fill_report(wrong, source="venue")])
    past_grace(harness)
    # Act
    reconcile_venue(harness.venue_id())
    # Assert: the fill is not booked twice; the difference is critical and stays open
    assert Fill.objects.filter(order=order).count() == 1
    assert findings() == [("FILL_MISMATCH", "CRITICAL", True)]
    assert ReconFinding.objects.get().detail["venue"] == ["0.004", "60000"]


def test_reconcile_when_oms_missed_a_fill_then_applied_and_finding_resolved(harness):
    # Arrange
    order = working(harness)
    harness.clock.advance(-30)
    harness.venue.trade(order.client_order_id, "0.004", "60000")
    harness.clock.advance(30)
    past_grace(harness)
    # Act
    run = reconcile_venue(harness.venue_id())
    # Assert
    assert run.fixed["missed_fills"] == 1
    assert harness.reload(order).filled_quantity == D("0.004")
    assert findings() == [("FILL_MISSING_IN_OMS", "WARNING", False)]
    assert ReconFinding.objects.get().resolution == "fill applied"


def test_reconcile_when_submitted_order_is_open_at_venue_then_settled_info_finding(harness):
    # Arrange: the venue took the order, its answer was lost; the OMS says SUBMITTED
    order = harness.submit()
    harness.venue.on_submit(lambda venue, call: (_ for _ in ()).throw(_lost(venue, call)))
    harness.run_queued()
    assert harness.reload(order).status == "SUBMITTED"
    harness.queued.clear()  # in-doubt resolution does not get there first
    past_grace(harness)
    # Act
    run = reconcile_venue(harness.venue_id())
    # Assert
    assert harness.reload(order).status == "ACCEPTED"
    assert order.pk in run.fixed["settled"]
    assert findings() == [("STATUS_MISMATCH", "INFO", False)]


def _lost(venue, call):
    from venues.base import VenueInDoubt

    venue.take(call)
    return VenueInDoubt("timeout")


# --- orders the venue no longer has ------------------------------------------------------


def test_reconcile_when_few_orders_vanish_then_closed_through_the_engine(harness):
    # Arrange
    orders = [working(harness, price=D("59000") - i) for i in range(2)]
    harness.venue.book.clear()  # the venue forgot them
    past_grace(harness)
    # Act
    run = reconcile_venue(harness.venue_id())
    # Assert
    for order in orders:
        order = harness.reload(order)
        assert order.status == "CANCELED" and "not found at sim-a" in order.reason
        assert order.events.last().source == "recon"
    assert sorted(run.fixed["settled"]) == sorted(o.pk for o in orders)
    assert findings() == [("MISSING_AT_VENUE", "WARNING", False)] * 2
    assert venue_state(harness) == "ACTIVE"


def test_reconcile_when_more_than_threshold_vanish_then_alert_reducing_and_nothing_closed(
    harness, caplog, settings
):
    # Arrange: 6 working orders (threshold 5), then the venue restarts and forgets them
    settings.RECON_MASS_MISSING_THRESHOLD = 5
    orders = [working(harness, price=D("59000") - i) for i in range(6)]
    harness.venue.book.clear()
    past_grace(harness)
    # Act
    with caplog.at_level(logging.WARNING, logger="orders.reconcile"):
        run = reconcile_venue(harness.venue_id())
        again = reconcile_venue(harness.venue_id())
    # Assert: nothing closed, one critical finding, the venue REDUCING (audited)
    assert {harness.reload(o).status for o in orders} == {"ACCEPTED"}
    assert sorted(run.found["mass_missing"]) == sorted(o.pk for o in orders)
    assert again.fixed["settled"] == []
    assert findings() == [("MASS_MISSING", "CRITICAL", True)]
    alert = ReconFinding.objects.get()
    assert sorted(alert.detail["orders"]) == sorted(o.pk for o in orders)
    assert venue_state(harness) == "REDUCING"
    change = TradingStateChange.objects.get(new_state="REDUCING")
    assert change.changed_by_name == "reconciliation" and f"finding {alert.pk}" in change.reason
    alerts = [r for r in caplog.records if "event=recon_mass_missing" in r.getMessage()]
    assert len(alerts) == 1 and alerts[0].levelno == logging.WARNING
    with pytest.raises(OrderStateConflict):
        resolve_finding(finding_id=alert.pk, user="ops")  # only a confirmation closes it
    # Act: an operator confirms
    confirmation = confirm_missing(finding_id=alert.pk, user="ops")
    # Assert: closed through the engine, the confirmation on record
    assert sorted(confirmation.closed) == sorted(o.pk for o in orders)
    for order in orders:
        order = harness.reload(order)
        assert order.status == "CANCELED" and "closed on confirmation by ops" in order.reason
    alert.refresh_from_db()
    assert (alert.resolved_by, alert.detail["confirmation"]["by"]) == ("ops", "ops")
    from audit.models import AuditRecord

    record = AuditRecord.objects.get(action="recon.mass_missing_confirm")
    assert (record.stream, record.actor) == ("operator", "ops")
    assert venue_state(harness) == "REDUCING"  # release is its own audited action
    with pytest.raises(OrderStateConflict):
        confirm_missing(finding_id=alert.pk, user="ops")


def test_reconcile_threshold_is_a_setting(harness, settings):
    settings.RECON_MASS_MISSING_THRESHOLD = 1
    orders = [working(harness, price=D("59000") - i) for i in range(2)]
    harness.venue.book.clear()
    past_grace(harness)
    reconcile_venue(harness.venue_id())
    assert {harness.reload(o).status for o in orders} == {"ACCEPTED"}
    assert findings() == [("MASS_MISSING", "CRITICAL", True)]


# --- unknown orders: per symbol, adoption imports fills ----------------------------------


def _entry(venue_order_id: str, client_order_id: str, symbol: str, price: str) -> BookEntry:
    return BookEntry(
        venue_order_id=venue_order_id, client_order_id=client_order_id, symbol=symbol,
        side="buy", type="limit", quantity=D("0.5"), price=D(price),
    )  # fmt: skip


def test_unknown_orders_with_one_venue_order_id_on_two_symbols_then_two_rows(harness):
    # Arrange: the venue numbers orders per symbol: id 7 on BTC/USDT and on ETH/USDT
    harness.venue.book["m-btc"] = _entry("7", "m-btc", "BTC/USDT", "50000")
    harness.venue.book["m-eth"] = _entry("7", "m-eth", "ETH/USDT", "2000")
    # Act
    reconcile_venue(harness.venue_id())
    reconcile_venue(harness.venue_id())
    # Assert
    rows = sorted(UnknownVenueOrder.objects.values_list("symbol", "venue_order_id", "state"))
    assert rows == [("BTC/USDT", "7", "OPEN"), ("ETH/USDT", "7", "OPEN")]
    assert findings() == [("UNKNOWN_AT_OMS", "WARNING", True)] * 2
    # one of them goes away at the venue: only that one is GONE
    harness.venue.book["m-eth"].status = VenueOrderStatus.CANCELED
    reconcile_venue(harness.venue_id())
    rows = sorted(UnknownVenueOrder.objects.values_list("symbol", "state"))
    assert rows == [("BTC/USDT", "OPEN"), ("ETH/USDT", "GONE")]
    assert sorted(findings()) == [
        ("UNKNOWN_AT_OMS", "WARNING", False),
        ("UNKNOWN_AT_OMS", "WARNING", True),
    ]


def test_adopt_a_partially_filled_unknown_order_then_its_earlier_fills_imported_once(harness):
    # Arrange: placed behind the OMS's back and partly traded
    harness.venue.place("manual-1", side="buy", quantity="0.5", price="59000")
    harness.venue.trade("manual-1", "0.1", "59000")
    harness.venue.trade("manual-1", "0.05", "59000")
    reconcile_venue(harness.venue_id())
    unknown = UnknownVenueOrder.objects.get()
    assert unknown.filled_quantity == D("0.15")
    # Act
    from orders.models import Account

    order = unknown_adopt(
        unknown_id=unknown.pk, account=Account.objects.get(code="DEMO"), user="ops"
    )
    reconcile_venue(harness.venue_id())
    # Assert
    order = harness.reload(order)
    assert (order.status, order.filled_quantity) == ("PARTIALLY_FILLED", D("0.15"))
    assert Fill.objects.filter(order=order).count() == 2
    assert sorted(Fill.objects.values_list("venue_trade_id", flat=True)) == ["T2", "T3"]
    unknown.refresh_from_db()
    assert unknown.state == "ADOPTED"
    # the run after adoption: no difference left open
    assert not ReconFinding.objects.filter(resolved_at__isnull=True).exists()
