"""Routing a parent order: one round at a time (the ``oms.route.parent`` task).

A round reads the current books and venue conditions (``routing/inputs.py``), asks the
planner (``routing/sor.py``) for a plan on what the parent has left, records the plan
(``routing.models.RouteDecision``) and acts on it through the execution engine
(``orders.engine.parent_round``), the one writer of orders:

1. not yet routed and no venue may trade it: DENIED, ``NO_ROUTE: ...`` naming each
   venue's state (the engine asks the same before accepting it; this is the case where a
   venue went away in between);
2. while rounds are left (``MAX_ROUNDS`` since the last amend): IOC limit children pinned
   at their planned prices. When they have all ended, the engine asks for the next
   round on the book as it is then. A venue that rejected a child of this parent is set
   aside for the rest of it (the next venue gets the quantity, never twice: a round
   plans only what is left once every child has ended);
3. nothing (more) to take: a GTC limit remainder rests as one GTC child at the parent's
   price at the venue the planner names (``plan.rest_venue``); an IOC, FOK or market
   remainder, or one with nowhere to rest, is canceled.

Idempotent: a round runs only for a parent that may be routed and has no child open,
under its lock; a repeated task finds the children of the round before it open (or
the parent finished) and does nothing.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from orders import engine
from orders.domain import lifecycle as lc
from orders.models import Order
from routing import inputs as route_inputs
from routing import sor
from routing.models import RouteDecision

log = logging.getLogger(__name__)

MAX_ROUNDS = 3  # sweeps per parent (and again after each amend) before it rests or ends


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value.normalize(), "f")


def _rejected_venues(parent_id: int) -> dict[str, str]:
    """Venues that rejected a child of this parent: set aside for the rest of it."""
    rows = (
        Order.objects.filter(parent_id=parent_id, status=lc.OrderStatus.REJECTED.value)
        .order_by("id")
        .values_list("venue__name", "reason")
    )
    return {venue: f"rejected a child of this order: {reason}"[:200] for venue, reason in rows}


def _halted(order: Order) -> str | None:
    """The kill switch at a scope that covers the parent (global, account, symbol)."""
    from django.db.models import Q

    from risk.models import TradingState

    row = (
        TradingState.objects.filter(state="HALTED")
        .filter(
            Q(scope="global")
            | Q(scope="symbol", instrument_id=order.instrument_id)
            | Q(scope="account", account_id=order.account_id, instrument__isnull=True)
            | Q(scope="account", account_id=order.account_id, instrument_id=order.instrument_id)
        )
        .first()
    )
    return f"kill switch: {row.scope} HALTED ({row.reason})" if row else None


def route(parent_id: int) -> str:
    """Plan and act on one round of ``parent_id`` (see the module's docstring)."""
    parent = Order.objects.select_related("instrument", "account").filter(pk=parent_id).first()
    if parent is None or parent.venue_id is not None or parent.status in engine._TERMINAL:
        return "nothing to route"
    # read before the lock: nothing waits on Redis while holding it
    inputs = route_inputs.gather(
        parent.instrument, side=parent.side, exclude=_rejected_venues(parent_id)
    )
    halted = _halted(parent)
    with engine.parent_round(parent_id) as r:
        if r is None:
            return "nothing to route now"
        return _round(r, inputs, halted)


def _round(r: engine.ParentRound, inputs: route_inputs.Inputs, halted: str | None) -> str:
    order = r.order
    leaves = r.leaves
    done = RouteDecision.objects.filter(parent_id=order.pk)
    round_no = done.count() + 1
    this_amend = [k for k in done.filter(amend=order.amend_count).values_list("kind", flat=True)]
    sweeps = sum(1 for k in this_amend if k == RouteDecision.Kind.SWEEP)
    rested = RouteDecision.Kind.REST in this_amend
    plan = sor.plan(
        route_inputs.spec_of(order, leaves), inputs.books, inputs.conditions, inputs.now
    )
    venues = route_inputs.explain(plan, inputs)

    def record(kind: str, children: list[Order], outcome: str) -> None:
        RouteDecision.objects.create(
            parent_id=order.pk,
            round=round_no,
            amend=order.amend_count,
            kind=kind,
            quantity=leaves,
            inputs={**inputs.summary(), "halted": halted},
            children=[
                {
                    "order_id": c.pk,
                    "client_order_id": c.client_order_id,
                    "venue_client_order_id": c.venue_client_order_id,
                    "venue": c.venue.name,
                    "quantity": _dec(c.quantity),
                    "price": _dec(c.price),
                    "time_in_force": c.time_in_force,
                }
                for c in children
                if c.venue is not None
            ],  # fmt: skip
            venues=[d.to_json() for d in venues],
            rest_venue=plan.rest_venue or "",
            outcome=outcome,
        )
        r.note("RoutePlanned", {"round": round_no, "kind": kind, "children": [c.pk for c in children],
                                "outcome": outcome})  # fmt: skip

    unroutable = halted or (
        route_inputs._named(plan.unroutable, inputs) if plan.unroutable else None
    )
    if order.status == lc.OrderStatus.PENDING_NEW.value and unroutable:
        record(RouteDecision.Kind.DONE, [], unroutable)
        r.deny(unroutable)
        return unroutable
    r.accept()
    if halted:
        record(RouteDecision.Kind.DONE, [], halted)
        r.finish(halted)
        return halted
    if sweeps < MAX_ROUNDS and plan.children:
        specs = [engine.ChildSpec(c.venue, c.quantity, c.price, "IOC") for c in plan.children]
        children = r.send(specs, round_no=round_no)
        outcome = f"{len(children)} IOC children"
        record(RouteDecision.Kind.SWEEP, children, outcome)
        return outcome
    if order.type == "limit" and order.time_in_force == "GTC" and not rested:
        if plan.rest_venue is not None and order.price is not None:
            spec = engine.ChildSpec(plan.rest_venue, leaves, order.price, "GTC")
            children = r.send([spec], round_no=round_no)
            outcome = f"the remainder rests at {plan.rest_venue}"
            record(RouteDecision.Kind.REST, children, outcome)
            return outcome
        reason = unroutable or "no venue to rest the remainder at"
    elif order.type == "limit" and order.time_in_force == "GTC":
        reason = "the resting child ended; remainder canceled"
    else:
        why = unroutable or (
            f"nothing more within the limit after {sweeps} rounds" if sweeps else "nothing to take"
        )
        reason = f"{order.time_in_force} remainder canceled: {why}"
    record(RouteDecision.Kind.DONE, [], reason)
    r.finish(reason)
    return reason


def route_json(parent: Order) -> list[dict[str, Any]]:
    """The parent's route decisions, oldest first (the API's ``route``)."""
    return [d.to_json() for d in RouteDecision.objects.filter(parent_id=parent.pk)]
