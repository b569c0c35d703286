"""Parent and child orders in the execution engine, in process: the real engine, writer,
lifecycle, risk, router and database; two scripted fake venues (sim-a, sim-b) and books
published in Redis as ``oms marketdata`` would (tests/orders/engine_harness.py).

Each test routes an order without a venue and checks the parent's state and events, its
children, its route decisions and what reached each venue."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal as D
from typing import Any

import pytest

from marketdata.book import MdState
from marketdata.consolidated import VenueBook
from marketdata.store import book_key, mark_key, publish
from orders import engine, venue_calls
from orders.domain.commands import CancelAll, CancelOrder, ModifyOrder
from orders.domain.errors import OrderRiskDenied
from orders.models import Order, Position
from orders.reports import fill_report
from orders.venue_calls import Outcome
from routing import parents
from routing.models import RouteDecision
from tests.orders import engine_harness
from tests.orders.engine_harness import Harness, ScriptedVenue, ack, fill, installed, reject

pytestmark = pytest.mark.django_db(transaction=True)

ROUTE = "oms.route.parent"


class SorHarness:
    """The engine harness with two venues and the router's tasks."""

    def __init__(self, h: Harness, venues: dict[str, ScriptedVenue]) -> None:
        self.h = h
        self.venues = venues
        self.a, self.b = venues["sim-a"], venues["sim-b"]

    def books(self, **levels: Any) -> None:
        """``sim_a=[("60000", "0.3")], sim_b=...``: ask levels (bids mirror them 10 lower);
        ``age_s`` / ``state`` per venue with ``sim_a_age=...``."""
        from omsweb.redis_client import client

        r = client()
        for venue in ("sim-a", "sim-b"):
            key = venue.replace("-", "_")
            asks = [(D(p), D(q)) for p, q in levels.get(key, [])]
            if not asks:
                r.delete(book_key(venue, "BTC/USDT"))
                continue
            bids = [(p - D(10), q) for p, q in asks]
            publish(
                r,
                VenueBook(
                    venue=venue,
                    symbol="BTC/USDT",
                    state=levels.get(f"{key}_state", MdState.LIVE),
                    bids=bids,
                    asks=asks,
                    ts=time.time() - levels.get(f"{key}_age", 0.0),
                    interval_s=60.0 if levels.get(f"{key}_age") is None else 2.0,
                ),
            )
        r.set(mark_key("BTC/USDT"), "60000")

    def parent(self, **fields: Any) -> Order:
        command = {"venue": None, "type": "market", "price": None, "quantity": D("0.5")}
        command.update(fields)
        return self.h.submit(**command)

    def run(self, rounds: int = 10) -> None:
        """Run queued work (and what it queues) until nothing is left."""
        for _ in range(rounds):
            if not self.h.queued:
                return
            self.h.run_queued()
        raise AssertionError(f"work left after {rounds} rounds: {self.h.tasks_queued()}")

    @staticmethod
    def children(parent: Order) -> list[Order]:
        return list(Order.objects.filter(parent_id=parent.pk).order_by("id"))

    def submitted(self, venue: str) -> list[str]:
        return [c.request.client_order_id for c in self.venues[venue].calls("submit_order")]


@pytest.fixture
def sor(transactional_db, monkeypatch) -> Iterator[SorHarness]:
    gen = installed(monkeypatch)
    h = next(gen)
    venues = {"sim-a": h.venue, "sim-b": ScriptedVenue("sim-b", clock=h.clock)}
    monkeypatch.setattr(venue_calls, "adapter_for", lambda venue: venues[venue.name])
    monkeypatch.setitem(
        engine_harness._TASKS,
        ROUTE,
        (lambda i: Outcome(done=True, detail=parents.route(i)), "", ""),
    )
    monkeypatch.setitem(
        engine_harness._TASKS,
        engine.CANCEL_CHILDREN_TASK,
        (lambda i: Outcome(done=True, detail=str(engine.cancel_children(i))), "", ""),
    )
    s = SorHarness(h, venues)
    s.books(sim_a=[("60000", "0.3"), ("60020", "1")], sim_b=[("60005", "0.5"), ("60030", "1")])
    yield s
    from omsweb.redis_client import client

    # the route tasks the web server queued for real, sim-b's book, any breaker left open
    client().delete("oms.route", book_key("sim-b", "BTC/USDT"), "oms:breaker:sim-a")
    next(gen, None)  # the harness's own clean-up (sim-a's book, the mark)


def kinds(order: Order) -> list[str]:
    return list(order.events.order_by("sequence").values_list("kind", flat=True))


def reload(order: Order) -> Order:
    return Order.objects.get(pk=order.pk)


# --- routing --------------------------------------------------------------------------------


def test_market_buy_larger_than_best_level_then_split_across_both_venues(sor):
    # Arrange: sim-a 0.3 @ 60000, sim-b 0.5 @ 60005
    sor.a.on_submit(fill("0.3", "60000"))
    sor.b.on_submit(fill("0.2", "60005"))
    # Act
    parent = sor.parent(quantity=D("0.5"), client_order_id="split-1")
    assert parent.venue_id is None and parent.status == "PENDING_NEW"
    assert sor.h.tasks_queued() == [ROUTE]
    sor.run()
    # Assert
    parent = reload(parent)
    assert parent.status == "FILLED"
    assert parent.filled_quantity == D("0.5")
    assert parent.average_price == (D("0.3") * 60000 + D("0.2") * 60005) / D("0.5")
    a, b = sor.children(parent)
    assert (a.venue.name, a.quantity, a.price, a.time_in_force) == ("sim-a", D("0.3"), 60000, "IOC")
    assert (b.venue.name, b.quantity, b.price) == ("sim-b", D("0.2"), D("60005"))
    assert {a.status, b.status} == {"FILLED"}
    # child ids derive from the parent's; each reached its venue exactly once
    assert (a.client_order_id, b.client_order_id) == ("split-1.r1.1", "split-1.r1.2")
    assert a.venue_client_order_id.startswith(parent.venue_client_order_id + ".r1.")
    assert sor.submitted("sim-a") == [a.venue_client_order_id]
    assert sor.submitted("sim-b") == [b.venue_client_order_id]
    assert kinds(parent) == [
        "OrderCreated", "OrderSubmitted", "OrderAccepted", "RoutePlanned",
        "OrderFilled", "OrderFilled",
    ]  # fmt: skip
    # the position moved once (the children's fills), not twice
    position = Position.objects.get(account__code="DEMO", instrument__symbol="BTC/USDT")
    assert position.quantity == D("0.5")
    (decision,) = RouteDecision.objects.filter(parent=parent)
    assert [v["venue"] for v in decision.venues] == ["sim-a", "sim-b"]
    assert set(decision.venues[0]) == {
        "venue", "price", "fee_adjusted_price", "available", "age_ms", "score", "quantity",
        "reason",
    }  # fmt: skip
    assert [c["order_id"] for c in decision.children] == [a.pk, b.pk]


def test_ioc_remainder_when_children_leave_quantity_then_rerouted_bounded_then_canceled(sor):
    # Arrange: round 1 fills 0.1 of sim-a's 0.3 and all of sim-b's 0.2; later rounds nothing
    sor.a.on_submit(fill("0.1", "60000"), ack(), ack())
    sor.b.on_submit(fill("0.2", "60005"))
    # Act
    parent = sor.parent(quantity=D("0.5"))
    sor.run(rounds=20)
    # Assert: 3 sweeps, then the IOC remainder is canceled
    parent = reload(parent)
    assert parent.status == "CANCELED"
    assert parent.filled_quantity == D("0.3")
    assert "IOC remainder canceled" in parent.reason
    decisions = list(RouteDecision.objects.filter(parent=parent))
    assert [d.kind for d in decisions] == ["sweep", "sweep", "sweep", "done"]
    assert [d.quantity for d in decisions] == [D("0.5"), D("0.2"), D("0.2"), D("0.2")]
    assert sum(c.filled_quantity for c in sor.children(parent)) == D("0.3")
    assert not [c for c in sor.children(parent) if c.status in engine._OPEN]


def test_child_rejected_by_venue_then_rerouted_to_next_venue_without_double_fill(sor):
    # Arrange: sim-a (best) rejects; sim-b fills
    sor.a.on_submit(reject("insufficient balance"))
    sor.b.on_submit(fill("0.2", "60005"))
    # Act
    parent = sor.parent(quantity=D("0.2"))
    sor.run()
    # Assert
    parent = reload(parent)
    assert parent.status == "FILLED" and parent.filled_quantity == D("0.2")
    rejected, filled = sor.children(parent)
    assert (rejected.venue.name, rejected.status) == ("sim-a", "REJECTED")
    assert (filled.venue.name, filled.status, filled.quantity) == ("sim-b", "FILLED", D("0.2"))
    # a parent id too long for a suffix: the children's ids carry its venue-side id
    assert filled.client_order_id == parent.venue_client_order_id.removeprefix("oms-") + ".r2.1"
    assert len(sor.submitted("sim-a")) == 1 and len(sor.submitted("sim-b")) == 1
    second = RouteDecision.objects.get(parent=parent, round=2)
    by_venue = {v["venue"]: v for v in second.venues}
    assert by_venue["sim-a"]["quantity"] == "0"
    assert "rejected a child" in by_venue["sim-a"]["reason"]


def test_venue_with_open_breaker_or_stale_book_then_gets_nothing(sor):
    from omsweb.redis_client import client

    # Arrange: sim-a (best) has its breaker open; then sim-a fine but its book stale
    far = int(time.time() * 1000) + 60_000
    client().hset("oms:breaker:sim-a", mapping={"state": "open", "open_until": far})
    sor.b.on_submit(fill("0.2", "60005"), fill("0.2", "60005"))
    # Act
    first = sor.parent(quantity=D("0.2"))
    sor.run()
    client().delete("oms:breaker:sim-a")
    sor.books(sim_a=[("60000", "0.3")], sim_a_age=30.0, sim_b=[("60005", "0.5")])
    second = sor.parent(quantity=D("0.2"))
    sor.run()
    # Assert
    assert sor.submitted("sim-a") == []
    for parent, why in ((first, "breaker open"), (second, "STALE")):
        parent = reload(parent)
        assert parent.status == "FILLED"
        (child,) = sor.children(parent)
        assert child.venue.name == "sim-b"
        (decision,) = RouteDecision.objects.filter(parent=parent)
        sim_a = next(v for v in decision.venues if v["venue"] == "sim-a")
        assert sim_a["quantity"] == "0" and why in sim_a["reason"]


def test_no_live_venue_for_symbol_then_parent_denied_no_route_naming_each_venue(sor):
    from omsweb.redis_client import client

    # Arrange: sim-a's breaker open, sim-b's book stale
    far = int(time.time() * 1000) + 60_000
    client().hset("oms:breaker:sim-a", mapping={"state": "open", "open_until": far})
    sor.books(sim_a=[("60000", "0.3")], sim_b=[("60005", "0.5")], sim_b_age=30.0)
    # Act
    with pytest.raises(OrderRiskDenied) as denied:
        sor.parent(type="limit", price=D("60000"), quantity=D("0.1"))
    # Assert
    order = reload(denied.value.order)
    assert order.status == "DENIED" and order.venue_id is None
    (no_route,) = [r for r in denied.value.reasons if r["check"] == "NO_ROUTE"]
    assert no_route["message"].startswith("NO_ROUTE")
    assert "sim-a" in no_route["message"] and "breaker open" in no_route["message"]
    assert "sim-b" in no_route["message"] and "STALE" in no_route["message"]
    assert sor.h.tasks_queued() == []


def test_gtc_limit_not_marketable_then_rests_at_router_venue(sor):
    # Act: a buy at 59990, under both asks
    parent = sor.parent(type="limit", price=D("59990"), time_in_force="GTC", quantity=D("0.2"))
    sor.run()
    # Assert
    parent = reload(parent)
    assert parent.status == "ACCEPTED"
    (child,) = sor.children(parent)
    assert (child.type, child.time_in_force, child.price, child.quantity) == (
        "limit", "GTC", D("59990"), D("0.2"),
    )  # fmt: skip
    assert child.status == "ACCEPTED"
    (decision,) = RouteDecision.objects.filter(parent=parent)
    assert decision.kind == "rest" and decision.rest_venue == child.venue.name


def _resting(sor) -> tuple[Order, Order]:
    parent = sor.parent(type="limit", price=D("59990"), time_in_force="GTC", quantity=D("0.2"))
    sor.run()
    (child,) = sor.children(parent)
    return reload(parent), child


def test_cancel_parent_then_children_canceled_and_none_left_working(sor):
    # Arrange
    parent, child = _resting(sor)
    # Act
    engine.execute(CancelOrder(order_id=parent.pk, reason="user"))
    assert reload(parent).status == "PENDING_CANCEL"
    sor.run()
    # Assert
    assert reload(child).status == "CANCELED"
    parent = reload(parent)
    assert parent.status == "CANCELED"
    assert kinds(parent)[-2:] == ["OrderCancelRequested", "OrderCanceled"]
    assert not Order.objects.filter(parent_id=parent.pk, status__in=engine._OPEN).exists()
    assert [c.method for c in sor.venues[child.venue.name].requests] == [
        "submit_order", "cancel_order",
    ]  # fmt: skip


def test_fill_on_child_after_parent_canceled_then_applied_flagged_and_figures_right(sor):
    # Arrange: a resting child, the parent canceled
    parent, child = _resting(sor)
    engine.execute(CancelOrder(order_id=parent.pk))
    sor.run()
    assert reload(parent).status == "CANCELED"
    # Act: the venue reports a trade it made before the cancel
    venue = sor.venues[child.venue.name]
    trade = venue.trade(child.venue_client_order_id, "0.05", "59990")
    engine.process(child.pk, [fill_report(trade, source="venue")])
    # Assert
    parent = reload(parent)
    assert parent.status == "CANCELED"
    assert parent.filled_quantity == D("0.05") and parent.average_price == D("59990")
    last = parent.events.order_by("-sequence").first()
    assert (last.kind, last.late) == ("OrderFilled", True)
    assert last.payload["child_id"] == child.pk


def test_amend_parent_then_children_canceled_and_remainder_replanned(sor):
    # Arrange: resting at 59990
    parent, child = _resting(sor)
    sor.a.on_submit(fill("0.2", "60000"))
    # Act: up to 60000, marketable at sim-a
    engine.execute(ModifyOrder(order_id=parent.pk, price=D("60000")))
    assert reload(parent).status == "PENDING_REPLACE"
    sor.run()
    # Assert
    assert reload(child).status == "CANCELED"
    parent = reload(parent)
    assert parent.status == "FILLED" and parent.price == D("60000")
    assert parent.amend_count == 1
    newest = sor.children(parent)[-1]
    assert (newest.venue.name, newest.price, newest.status) == ("sim-a", D("60000"), "FILLED")
    assert [d.kind for d in RouteDecision.objects.filter(parent=parent)] == ["rest", "sweep"]


def test_cancel_all_covers_parent_and_children(sor):
    parent, child = _resting(sor)
    engine.execute(CancelAll(order_ids=(parent.pk, child.pk), reason="cancel-all"))
    sor.run()
    assert reload(parent).status == "CANCELED"
    assert reload(child).status == "CANCELED"


def test_open_orders_limit_counts_parent_once_not_its_children(sor):
    from risk.models import RiskLimit

    # Arrange: at most 2 open orders; a parent with its resting child is one of them
    RiskLimit.objects.filter(kind="max_open_orders", account__isnull=True).update(value=2)
    _resting(sor)
    # Act: a second order is the account's second open order, not its third
    second = sor.h.submit(price=D("59000"), venue="sim-a")
    # Assert
    assert second.status == "PENDING_NEW"


# --- the API ------------------------------------------------------------------------------

ROUTE_VENUE_KEYS = {
    "venue", "price", "fee_adjusted_price", "available", "age_ms", "score", "quantity", "reason",
}  # fmt: skip


def test_api_parent_then_detail_has_children_and_route_and_list_filters_by_parent(sor, api):
    # Arrange
    sor.a.on_submit(fill("0.3", "60000"))
    sor.b.on_submit(fill("0.2", "60005"))
    client = api("trader")
    body = {"client_order_id": "api-split", "account": "DEMO", "symbol": "BTC/USDT",
            "side": "buy", "type": "market", "quantity": "0.5"}  # fmt: skip
    # Act
    r = client.post("/api/v1/orders/", body)
    assert r.status_code == 201, r.text
    parent_id = r.json()["id"]
    parents.route(parent_id)  # the route task (the web server queued it in its own process)
    sor.run()
    # Assert
    assert r.json()["venue"] is None and r.json()["parent_id"] is None
    detail = client.get(f"/api/v1/orders/{parent_id}/").json()
    assert detail["status"] == "FILLED" and detail["filled_quantity"] == "0.5"
    assert [c["venue"] for c in detail["children"]] == ["sim-a", "sim-b"]
    assert {c["parent_id"] for c in detail["children"]} == {parent_id}
    (decision,) = detail["route"]
    assert decision["round"] == 1 and decision["kind"] == "sweep"
    assert all(set(v) == ROUTE_VENUE_KEYS for v in decision["venues"])
    assert [D(v["quantity"]) for v in decision["venues"]] == [D("0.3"), D("0.2")]
    listed = client.get(f"/api/v1/orders/?parent_id={parent_id}").json()["results"]
    assert sorted(o["id"] for o in listed) == sorted(c["id"] for c in detail["children"])
    direct = client.get(f"/api/v1/orders/{detail['children'][0]['id']}/").json()
    assert direct["children"] == [] and direct["route"] == []
    bad = client.get("/api/v1/orders/?parent_id=x")
    assert bad.status_code == 400 and "parent_id" in bad.text


def test_api_parent_when_no_venue_may_trade_then_422_no_route(sor, api):
    # Arrange: both books stale
    sor.books(sim_a=[("60000", "0.3")], sim_a_age=30.0, sim_b=[("60005", "0.5")], sim_b_age=30.0)
    body = {"account": "DEMO", "symbol": "BTC/USDT", "side": "buy", "type": "limit",
            "price": "60000", "quantity": "0.1"}  # fmt: skip
    # Act
    r = api("trader").post("/api/v1/orders/", body)
    # Assert
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "RISK_DENIED"
    (no_route,) = [x for x in error["reasons"] if x["check"] == "NO_ROUTE"]
    assert "sim-a market data STALE" in no_route["message"]
    assert "sim-b market data STALE" in no_route["message"]
    assert r.json()["order"]["status"] == "DENIED" and r.json()["order"]["venue"] is None


def test_admin_parent_page_then_children_and_route_decisions_read_only(sor, client):
    from django.contrib.auth.models import User

    # Arrange
    sor.a.on_submit(fill("0.3", "60000"))
    sor.b.on_submit(fill("0.2", "60005"))
    parent = sor.parent(quantity=D("0.5"), client_order_id="admin-split")
    sor.run()
    client.force_login(User.objects.create_superuser("boss", password="boss-pw-123"))
    # Act
    page = client.get(f"/admin/orders/order/{parent.pk}/change/").content.decode()
    # Assert
    assert "child orders (routed)" in page.lower() and "admin-split.r1.2" in page
    assert "route decisions" in page.lower() and "sim-b: 0.2" in page


def test_kill_switch_global_halt_then_parent_and_its_children_canceled(sor, monkeypatch):
    from omsweb.celery import app
    from risk import killswitch, services

    # Arrange: a parent resting through its GTC child
    parent, child = _resting(sor)
    per_order: list[int] = []
    monkeypatch.setattr(killswitch, "_send_cancel_task", per_order.append)
    monkeypatch.setattr(app, "send_task", lambda *args, **kwargs: None)  # the follow-up sweep
    monkeypatch.setattr("venues.registry.adapter_for", lambda venue: sor.venues[venue.name])
    change = services.trading_state_set(
        actor=services.operator("test-risk"), scope="global", state="HALTED", reason="drill"
    ).change
    # Act: the sweep, then the per-order cancels it asked for, then what they queue
    killswitch.sweep(change.pk)
    for order_id in per_order:
        venue_calls.cancel(order_id)
    sor.run()
    # Assert
    assert reload(child).status == "CANCELED"
    assert reload(parent).status == "CANCELED"
    assert not Order.objects.filter(parent_id=parent.pk, status__in=engine._OPEN).exists()
    # and no round sends children while halted
    assert parents.route(parent.pk) == "nothing to route"


def test_amend_down_when_children_fill_beyond_it_meanwhile_then_amend_rejected_not_lost(sor):
    # Arrange: resting 0.2 at 59990; the amend to 0.1 races a fill of 0.15
    parent, child = _resting(sor)
    sor.venues[child.venue.name].on_cancel(fill("0.15", "59990"))
    # Act
    engine.execute(ModifyOrder(order_id=parent.pk, quantity=D("0.1")))
    sor.run()
    # Assert: the fill counts, the amend is refused on the record, nothing is left working
    parent = reload(parent)
    assert parent.filled_quantity == D("0.15") and parent.quantity == D("0.2")
    assert "OrderReplaceRejected" in kinds(parent)
    assert parent.status == "CANCELED"  # the remainder is not rested again
    assert not Order.objects.filter(parent_id=parent.pk, status__in=engine._OPEN).exists()


def test_late_fill_beyond_parent_quantity_then_kept_on_child_and_noted_on_parent(sor):
    # Arrange: round 1's child expires unfilled, round 2's fills the whole parent
    sor.a.on_submit(ack(), fill("0.2", "60000"))
    parent = sor.parent(quantity=D("0.2"))
    sor.run()
    first, second = sor.children(parent)
    assert reload(parent).status == "FILLED" and second.status == "FILLED"
    # Act: the venue reports a trade of the first child after all (a venue fault)
    trade = sor.a.trade(first.venue_client_order_id, "0.1", "60000")
    engine.process(first.pk, [fill_report(trade, source="venue")])
    # Assert: the child and the position have it; the parent stays right and says why
    assert reload(first).filled_quantity == D("0.1")
    parent = reload(parent)
    assert parent.status == "FILLED" and parent.filled_quantity == D("0.2")
    last = parent.events.order_by("-sequence").first()
    assert last.kind == "ChildFillNotApplied" and last.payload["child_id"] == first.pk
    position = Position.objects.get(account__code="DEMO", instrument__symbol="BTC/USDT")
    assert position.quantity == D("0.3")


def test_venue_balance_known_then_child_capped_and_rest_routed_elsewhere(sor):
    from omsweb.redis_client import client
    from venues.balances import publish as publish_balances
    from venues.balances import read as read_balances

    # Arrange: sim-a (best) holds 6000 USDT: 0.1 BTC at 60000; sim-b's balance unknown
    publish_balances(client(), "sim-a", {"USDT": D("6000"), "BTC": D("5")})
    assert read_balances(client(), ["sim-a", "sim-b"]) == {
        "sim-a": {"USDT": D("6000"), "BTC": D("5")}, "sim-b": None,
    }  # fmt: skip
    sor.a.on_submit(fill("0.1", "60000"))
    sor.b.on_submit(fill("0.2", "60005"))
    try:
        # Act
        parent = sor.parent(quantity=D("0.3"))
        sor.run()
    finally:
        client().delete("oms:balances:sim-a")
    # Assert
    a, b = sor.children(parent)
    assert (a.venue.name, b.venue.name) == ("sim-a", "sim-b")
    assert a.quantity * a.price <= D("6000") and a.quantity + b.quantity == D("0.3")
    (decision,) = RouteDecision.objects.filter(parent=parent)
    assert decision.inputs["conditions"]["sim-a"]["balance"] == "6000"
    assert decision.inputs["conditions"]["sim-b"]["balance"] is None
    assert reload(parent).status == "FILLED"


def test_refresh_balances_then_free_amounts_cached_and_failing_venue_skipped():
    from types import SimpleNamespace

    from omsweb.redis_client import client
    from venues.balances import read, refresh
    from venues.base import Balance, VenueUnavailable

    class Venue(SimpleNamespace):
        def fetch_balances(self):
            if self.name == "down":
                raise VenueUnavailable("breaker open")
            return {"USDT": Balance("USDT", D("100.5"), D("3")), "BTC": Balance("BTC", D(0), D(1))}

    venues = [Venue(name="bal-up"), Venue(name="down")]
    try:
        assert refresh(client(), venues, lambda v: v) == ["bal-up"]
        assert read(client(), ["bal-up", "down"]) == {
            "bal-up": {"USDT": D("100.5"), "BTC": D(0)}, "down": None,
        }  # fmt: skip
    finally:
        client().delete("oms:balances:bal-up")


def test_fix_user_parent_then_trades_reported_on_the_parent_never_its_children(sor):
    from django.contrib.auth.models import Group, User

    from fixgw.listener import stream_key
    from fixgw.mapping import OrderFacts
    from omsweb.redis_client import client
    from orders.models import Account

    # Arrange: a FIX user's stream (drop copy of everything the user entered)
    user = User.objects.create_user(username="fix-router", password="pw-123-fix")
    user.groups.add(Group.objects.get(name="trader"))
    Account.objects.get(code="DEMO").members.add(user)
    client().delete(stream_key(user.pk))
    sor.a.on_submit(fill("0.3", "60000"))
    sor.b.on_submit(fill("0.2", "60005"))
    try:
        # Act
        parent = sor.parent(quantity=D("0.5"), user_id=user.pk, client_order_id="fix-split")
        sor.run()
        entries = client().xrange(stream_key(user.pk))
    finally:
        client().delete(stream_key(user.pk))
    # Assert
    facts = [OrderFacts.from_record({k.decode(): v.decode() for k, v in raw.items()})
             for _, raw in entries]  # fmt: skip
    assert {f.order_id for f in facts} == {parent.pk}
    trades = [(f.kind, f.last_qty, f.last_px) for f in facts if f.last_qty is not None]
    assert trades == [("OrderFilled", D("0.3"), D("60000")), ("OrderFilled", D("0.2"), D("60005"))]
    assert facts[-1].status == "FILLED"
    assert all(c.created_by_id is None for c in sor.children(parent))
