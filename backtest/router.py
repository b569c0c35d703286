"""Orders without a venue: the router of the run (``--router``), and parent/child orders.

* ``sor``: ``routing.sor.plan`` (the OMS's smart order router) on the venues' books as
  the OMS's feed shows them, in rounds as ``routing/parents.py`` does live: the order
  becomes a parent (DENIED ``NO_ROUTE: ...`` when no venue may trade it at all); each
  planned child is an IOC marketable limit at its venue; when every child is done, what
  is left is planned again (at most ``max_route_rounds`` rounds), a venue that rejected
  a child being set aside for the rest of the parent; a GTC limit remainder then rests
  where the plan says (``rest_venue``); a market, IOC or FOK remainder is canceled.
* ``best``: the whole order to the venue with the best fee-adjusted touch.
* ``fixed:<venue>``: the whole order to that venue.

A parent's fills, status and average follow its children (each child fill is applied
to the parent through the lifecycle too); positions and risk count the children's
fills once.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from backtest.config import BacktestConfig
from backtest.model import Order
from marketdata.book import MdState
from marketdata.consolidated import VenueBook
from orders.domain import lifecycle as lc
from routing import sor


class Backtest(Protocol):
    """What the router uses of the engine (``backtest.engine.Backtest``)."""

    @property
    def config(self) -> BacktestConfig: ...
    @property
    def now_ns(self) -> int: ...
    @property
    def venues(self) -> Mapping[str, Any]: ...
    @property
    def orders(self) -> Mapping[str, Order]: ...
    @property
    def metrics(self) -> Any: ...

    def _event(self, order: Order, event: lc.OrderEvent) -> None: ...
    def _apply_parent(self, parent: Order, event: lc.OrderEvent) -> None: ...
    def _send_new(self, order: Order) -> None: ...
    def new_child(
        self, parent: Order, *, venue: str, quantity: Decimal, price: Decimal | None, tif: str
    ) -> Order: ...


ZERO = Decimal(0)
ONE = Decimal(1)
NS = 1_000_000_000
BOOK_LEVELS = 50
Status = lc.OrderStatus


def venue_books(bt: Backtest, symbol: str) -> list[VenueBook]:
    books = []
    for rt in bt.venues.values():
        view = rt.view
        src = view.sources.get(symbol)
        if src is None:
            continue
        state = view.state(symbol)
        books.append(
            VenueBook(
                venue=rt.name,
                symbol=symbol,
                state=state,
                bids=view.depth(symbol, True, BOOK_LEVELS) if state == MdState.LIVE else [],
                asks=view.depth(symbol, False, BOOK_LEVELS) if state == MdState.LIVE else [],
                ts=src.ts_ns / NS,
                received_ts=src.ts_ns / NS,
                taker_fee=rt.config.taker_fee,
            )
        )
    return books


def best_venue(bt: Backtest, order: Order) -> tuple[str | None, str]:
    """The venue with the best fee-adjusted touch among the LIVE ones, or why none."""
    best: tuple[Decimal, str] | None = None
    why = []
    for rt in bt.venues.values():
        view = rt.view
        state = view.state(order.symbol)
        if state != MdState.LIVE:
            why.append(f"{rt.name} market data {state.value}")
            continue
        fee = rt.config.taker_fee
        if order.side == "buy":
            touch = view.best_ask(order.symbol)
            value = None if touch is None else touch[0] * (ONE + fee)
        else:
            touch = view.best_bid(order.symbol)
            value = None if touch is None else -touch[0] * (ONE - fee)
        if value is None:
            why.append(f"{rt.name} has no {'asks' if order.side == 'buy' else 'bids'}")
            continue
        if best is None or value < best[0]:
            best = (value, rt.name)
    return (best[1], "") if best else (None, "NO_ROUTE: " + "; ".join(why))


def route_new(bt: Backtest, order: Order) -> None:
    """An order without a venue, after risk passed it."""
    router = bt.config.router
    if router.startswith("fixed:") or router == "best":
        venue, why = (router[6:], "") if router.startswith("fixed:") else best_venue(bt, order)
        if venue is None or venue not in bt.venues:
            _deny(bt, order, why or f"NO_ROUTE: no venue {venue!r}")
            return
        order.venue = venue
        bt._event(order, lc.OrderSubmitted())
        bt._send_new(order)
        return
    plan_round(bt, order)


def _deny(bt: Backtest, order: Order, reason: str) -> None:
    """Not routed at all: no venue may trade it (live: DENIED, ``NO_ROUTE: ...``)."""
    bt.metrics.denials["NO_ROUTE"] += 1
    bt._apply_parent(order, lc.OrderDenied(reasons=(reason,)))


def _rejected_venues(bt: Backtest, parent: Order) -> set[str]:
    """Venues that rejected a child of this parent: set aside for the rest of it."""
    return {
        c.venue for cid in parent.children if (c := bt.orders[cid]).status == "REJECTED" and c.venue
    }


def plan_round(bt: Backtest, parent: Order) -> None:
    """Plan what the parent has left and send the children."""
    leaves = parent.leaves_quantity
    set_aside = _rejected_venues(bt, parent)
    spec = sor.OrderSpec(
        symbol=parent.symbol,
        side=parent.side,
        type=parent.type,
        quantity=leaves,
        limit_price=parent.price,
        time_in_force=parent.time_in_force,
    )
    conditions = {
        rt.name: sor.VenueCondition(
            venue=rt.name,
            taker_fee=rt.config.taker_fee,
            lot_size=rt.config.lot_size,
            min_notional=rt.config.min_notional,
            tick_size=rt.config.tick_size,
            rate_headroom=0 if bt.now_ns < rt.rate_limited_until else 1,
            enabled=not rt.venue.down and rt.name not in set_aside,
        )
        for rt in bt.venues.values()
    }
    plan = sor.plan(spec, venue_books(bt, parent.symbol), conditions, bt.now_ns / NS)
    parent.route_rounds += 1
    bt.metrics.routes.append(
        {
            "ts": bt.now_ns,
            "order": parent.client_order_id,
            "round": parent.route_rounds,
            "children": [[c.venue, str(c.quantity), str(c.price)] for c in plan.children],
            "venues": [d.to_json() for d in plan.venues],
            "rest_venue": plan.rest_venue,
            "unroutable": plan.unroutable,
        }
    )
    if parent.state.status is Status.PENDING_NEW:
        resting = parent.type == "limit" and parent.time_in_force == "GTC" and plan.rest_venue
        if not plan.children and plan.unroutable and not resting:
            _deny(bt, parent, plan.unroutable)
            return
        bt._apply_parent(parent, lc.OrderSubmitted())
    if plan.children:
        for child in plan.children:
            bt.new_child(
                parent, venue=child.venue, quantity=child.quantity, price=child.price, tif="IOC"
            )
        return
    _remainder(bt, parent, plan.rest_venue, plan.unroutable)


def _remainder(bt: Backtest, parent: Order, rest_venue: str | None, unroutable: str | None) -> None:
    """Nothing more to take now: rest a GTC limit remainder, or end the parent."""
    if parent.type == "limit" and parent.time_in_force == "GTC" and rest_venue is not None:
        bt.new_child(
            parent, venue=rest_venue, quantity=parent.leaves_quantity, price=parent.price, tif="GTC"
        )
        return
    if parent.filled_quantity == 0 and unroutable:
        bt._apply_parent(parent, lc.OrderRejected(reason=unroutable))
        bt.metrics.rejects["NO_ROUTE"] += 1
        return
    reason = unroutable or f"remainder unfilled after {parent.route_rounds} routing round(s)"
    bt._apply_parent(parent, lc.OrderCanceled(reason=reason))


def child_changed(bt: Backtest, parent: Order, child: Order) -> None:
    if parent.is_terminal:
        return
    if parent.state.status is Status.SUBMITTED and child.state.status in (
        Status.ACCEPTED,
        Status.PARTIALLY_FILLED,
        Status.FILLED,
    ):
        bt._apply_parent(parent, lc.OrderAccepted())
    if any(not bt.orders[c].is_terminal for c in parent.children) or parent.is_terminal:
        return
    if parent.state.status is Status.PENDING_CANCEL:
        bt._apply_parent(parent, lc.OrderCanceled(reason="canceled"))
        return
    resting = (
        parent.type == "limit" and parent.time_in_force == "GTC" and child.time_in_force == "GTC"
    )
    if not resting and parent.route_rounds < bt.config.max_route_rounds:
        plan_round(bt, parent)
        return
    _remainder(bt, parent, None, None)


def parent_filled(bt: Backtest, parent: Order, child: Order, report: Any) -> None:
    if parent.is_terminal and parent.state.status is not Status.CANCELED:
        return
    event = lc.OrderFilled(
        trade_id=str(report.trade_id), quantity=report.quantity, price=report.price
    )
    parent.trade_ids.add(str(report.trade_id))
    bt._apply_parent(parent, event)


def parent_cancel_requested(bt: Backtest, parent: Order) -> None:
    if parent.state.status in (Status.SUBMITTED, Status.ACCEPTED, Status.PARTIALLY_FILLED):
        bt._apply_parent(parent, lc.OrderCancelRequested())
    if all(bt.orders[c].is_terminal for c in parent.children):
        bt._apply_parent(parent, lc.OrderCanceled(reason="canceled"))
