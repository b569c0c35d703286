"""The kill-switch sweep against real PostgreSQL with a fake venue adapter: what it
cancels, how (venue cancel-all or one by one), and what it leaves alone."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from orders import engine
from orders.models import Order, OrderEvent
from orders.reports import ExecutionReport, ReportKind
from risk import killswitch, services
from tests.marking import mark_sent
from venues.base import Capabilities, VenueOrder, VenueOrderStatus

pytestmark = pytest.mark.django_db

RISK = services.operator("test-risk")


class FakeVenue:
    """Holds open orders by venue order id; cancel-all answers like Binance."""

    def __init__(self, *, cancel_all: bool = True) -> None:
        self.open: dict[str, tuple[str, str, D]] = {}  # venue id -> (client id, symbol, filled)
        self.calls: list[tuple[str, str]] = []
        self._cancel_all = cancel_all
        self.name = "fake"

    def capabilities(self) -> Capabilities:
        return Capabilities(cancel_all=self._cancel_all)

    def last_used_weight(self) -> None:
        return None

    def cancel_all(self, symbol: str) -> list[VenueOrder]:
        self.calls.append(("cancel_all", symbol))
        out = []
        for vid, (cid, sym, filled) in list(self.open.items()):
            if sym != symbol:
                continue
            del self.open[vid]
            out.append(
                VenueOrder(
                    venue_order_id=vid,
                    client_order_id=cid,
                    symbol=sym,
                    side="buy",
                    type="limit",
                    status=VenueOrderStatus.CANCELED,
                    quantity=D("0.01"),
                    price=D("50000"),
                    filled_quantity=filled,
                )
            )
        return out


@pytest.fixture
def venue(monkeypatch):
    fake = FakeVenue()
    monkeypatch.setattr("venues.registry.adapter_for", lambda v: fake)
    return fake


@pytest.fixture
def sent(monkeypatch):
    """Per-order cancel tasks and follow-up sweeps the sweep enqueues (not run)."""
    record = {"cancels": [], "follow_ups": []}
    monkeypatch.setattr(killswitch, "_send_cancel_task", record["cancels"].append)
    from omsweb.celery import app
    from risk.services import KILL_SWEEP_TASK

    def send_task(name, args=None, kwargs=None, countdown=None, **options):  # noqa: ANN001, ANN003, ANN202
        assert name == KILL_SWEEP_TASK, name  # nothing else is sent by name here
        record["follow_ups"].append((args, kwargs, countdown))

    monkeypatch.setattr(app, "send_task", send_task)
    return record


def working(submit, venue: FakeVenue, n: int, *, at_venue: bool = True, **kw) -> list[Order]:
    orders = []
    for i in range(n):
        order, reasons = submit(price=D(f"{50000 + len(venue.open) + i}.00"), **kw)
        assert reasons == []
        mark_sent(order.pk)
        if at_venue:
            vid = f"v{order.pk}"
            engine.process(order.pk, [ExecutionReport(kind=ReportKind.ACK, venue_order_id=vid)])
            venue.open[vid] = (order.venue_client_order_id, order.instrument.symbol, D(0))
        orders.append(order)
    return orders


def statuses(orders) -> list[str]:
    return [Order.objects.get(pk=o.pk).status for o in orders]


def test_venue_halt_then_cancel_all_at_venue_and_every_order_canceled(ref, submit, venue, sent):
    # Arrange
    accepted = working(submit, venue, 3)
    in_flight = working(submit, venue, 1, at_venue=False)
    not_sent, _ = submit(price=D("49000.00"))
    other_venue, _ = submit(price=D("49001.00"), venue=ref["sim_b"])
    change = services.trading_state_set(
        actor=RISK, scope="venue", venue=ref["sim_a"], state="HALTED", reason="drill"
    ).change
    # Act
    result = killswitch.sweep(change.pk)
    # Assert
    assert venue.calls == [("cancel_all", "BTC/USDT")] and venue.open == {}
    assert statuses(accepted) == ["CANCELED"] * 3
    assert statuses([not_sent]) == ["CANCELED"]
    assert statuses(in_flight) == ["PENDING_CANCEL"]  # not at the venue yet: asked one by one
    assert sent["cancels"] == [in_flight[0].pk]
    assert statuses([other_venue]) == ["PENDING_NEW"]  # out of scope
    assert result["canceled_at_venue"] == 3 and result["pending_new_canceled"] == 1
    event = OrderEvent.objects.filter(order=accepted[0]).order_by("-sequence").first()
    assert event.kind == "OrderCanceled" and "kill switch: venue sim-a HALTED (drill)" in (
        Order.objects.get(pk=accepted[0].pk).reason
    )
    kinds = list(OrderEvent.objects.filter(order=accepted[0]).values_list("kind", "source"))
    assert ("OrderCancelRequested", "risk") in kinds
    assert sent["follow_ups"] and sent["follow_ups"][0][1]["follow_up"] is True
    change.refresh_from_db()
    assert change.detail["sweep"]["canceled_at_venue"] == 3


def test_account_halt_with_another_account_at_the_venue_then_one_by_one(ref, submit, venue, sent):
    demo = working(submit, venue, 2)
    hedge = working(submit, venue, 1, account=ref["hedge"])
    change = services.trading_state_set(
        actor=RISK, scope="account", account=ref["demo"], state="HALTED", reason="drill"
    ).change
    killswitch.sweep(change.pk)
    assert venue.calls == []  # a cancel-all would have hit HEDGE's order too
    assert statuses(demo) == ["PENDING_CANCEL"] * 2
    assert sorted(sent["cancels"]) == sorted(o.pk for o in demo)
    assert statuses(hedge) == ["ACCEPTED"]


def test_venue_without_cancel_all_then_one_by_one(ref, submit, venue, sent):
    venue._cancel_all = False
    orders = working(submit, venue, 2)
    change = services.trading_state_set(
        actor=RISK, scope="global", state="HALTED", reason="drill"
    ).change
    killswitch.sweep(change.pk)
    assert venue.calls == [] and sorted(sent["cancels"]) == sorted(o.pk for o in orders)


def test_venue_reports_more_filled_than_known_then_settled_by_the_cancel_task(
    ref, submit, venue, sent
):
    (order,) = working(submit, venue, 1)
    venue.open[f"v{order.pk}"] = (order.venue_client_order_id, "BTC/USDT", D("0.004"))
    change = services.trading_state_set(
        actor=RISK, scope="symbol", instrument=ref["btc"], state="HALTED", reason="drill"
    ).change
    killswitch.sweep(change.pk)
    assert statuses([order]) == ["PENDING_CANCEL"]  # not closed without its trades
    assert sent["cancels"] == [order.pk]


def test_released_before_the_sweep_runs_then_nothing_canceled(ref, submit, venue, sent):
    orders = working(submit, venue, 1)
    change = services.trading_state_set(
        actor=RISK, scope="global", state="HALTED", reason="drill"
    ).change
    services.trading_state_set(actor=RISK, scope="global", state="ACTIVE", reason="false alarm")
    assert killswitch.sweep(change.pk) == {"skipped": "scope no longer HALTED"}
    assert statuses(orders) == ["ACCEPTED"] and venue.calls == []


def test_follow_up_cancels_all_again_where_it_did(ref, submit, venue, sent):
    working(submit, venue, 1)
    change = services.trading_state_set(
        actor=RISK, scope="venue", venue=ref["sim_a"], state="HALTED", reason="drill"
    ).change
    first = killswitch.sweep(change.pk)
    # an order that reached the venue after the first pass, unknown as working to the OMS
    venue.open["late"] = ("late-1", "BTC/USDT", D(0))
    killswitch.sweep(change.pk, follow_up=True, groups=first["groups"])
    assert venue.open == {} and venue.calls == [("cancel_all", "BTC/USDT")] * 2
    assert len(sent["follow_ups"]) == 1  # a follow-up schedules no further one


def test_order_at_venue_not_yet_acked_then_matched_by_its_venue_side_client_id(
    ref, submit, venue, sent
):
    # The client's id is "mine-1"; the venue knows the order by the OMS's own id (issue
    # 13, item 5), and the sweep must match the venue's answer by that one.
    order, _ = submit(price=D("50000.00"), client_order_id="mine-1")
    mark_sent(order.pk)  # sent, no ack yet: the OMS has no venue order id
    venue.open["v-unacked"] = (order.venue_client_order_id, "BTC/USDT", D(0))
    change = services.trading_state_set(
        actor=RISK, scope="venue", venue=ref["sim_a"], state="HALTED", reason="drill"
    ).change
    killswitch.sweep(change.pk)
    assert order.venue_client_order_id != "mine-1"
    assert statuses([order]) == ["CANCELED"] and sent["cancels"] == []


def test_engage_when_committed_then_kill_switch_alert_once_and_not_on_release(
    ref, sent, caplog, django_capture_on_commit_callbacks
):
    # Arrange
    def alerts_logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "oms.alerts"]

    # Act
    with caplog.at_level("WARNING", logger="oms.alerts"):
        with django_capture_on_commit_callbacks(execute=True):
            services.trading_state_set(actor=RISK, scope="global", state="HALTED", reason="drill")
        engaged = alerts_logged()
        with django_capture_on_commit_callbacks(execute=True):
            services.trading_state_set(actor=RISK, scope="global", state="ACTIVE", reason="done")
    # Assert
    assert engaged == [
        "event=kill_switch_engaged scope=global state=HALTED by=test-risk reason=drill"
    ]
    assert alerts_logged() == engaged  # a release is no alert
