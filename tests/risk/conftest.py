"""Fixtures for the risk tests: reference data with the default limits, market data in
Redis, and helpers to set limits and submit orders through the execution engine."""

from __future__ import annotations

from decimal import Decimal as D

import pytest


@pytest.fixture(autouse=True)
def _no_market_data():
    """Each risk test starts without books or marks in Redis (other tests leave some
    behind, with a TTL): reference prices change what the checks decide."""
    from omsweb.redis_client import client

    r = client()
    stale = list(r.scan_iter("oms:book:*")) + list(r.scan_iter("oms:mark:*"))
    if stale:
        r.delete(*stale)


@pytest.fixture
def market():
    """Write books/marks into Redis like ``oms marketdata`` does; removed afterwards."""
    from omsweb.redis_client import client

    r = client()
    keys: list[str] = []

    class Market:
        def book(self, symbol: str, mid: str, *, venue: str = "sim-a", age_s: float = 0.0, **kw):
            from tests.market import publish_book

            keys.extend(publish_book(r, venue, symbol, mid, age_s=age_s, **kw))

        def mark(self, symbol: str, mid: str):
            key = f"oms:mark:{symbol}"
            r.set(key, mid)
            keys.append(key)

        def clear(self):
            if keys:
                r.delete(*keys)

    m = Market()
    yield m
    m.clear()


@pytest.fixture
def ref(db):
    from omsweb.demo import ensure_reference_data
    from orders.models import Account, Instrument
    from venues.models import Venue

    ensure_reference_data()
    return {
        "demo": Account.objects.get(code="DEMO"),
        "hedge": Account.objects.get(code="HEDGE"),
        "btc": Instrument.objects.get(symbol="BTC/USDT"),
        "eth": Instrument.objects.get(symbol="ETH/USDT"),
        "sim_a": Venue.objects.get(name="sim-a"),
        "sim_b": Venue.objects.get(name="sim-b"),
    }


@pytest.fixture
def set_limit(ref):
    """``set_limit("max_position", "1", account=..., instrument=...)``: create or change."""
    from risk import services
    from risk.models import RiskLimit

    actor = services.operator("test")

    def set_(kind: str, value, *, account=None, instrument=None, breach_action=None):
        existing = RiskLimit.objects.filter(
            kind=kind, account=account, instrument=instrument
        ).first()
        if existing:
            return services.limit_update(
                actor=actor,
                limit_id=existing.pk,
                value=D(str(value)),
                breach_action=breach_action,
                reason="test",
            )
        return services.limit_create(
            actor=actor,
            kind=kind,
            value=D(str(value)),
            account=account,
            instrument=instrument,
            breach_action=breach_action or "",
            reason="test",
        )

    return set_


@pytest.fixture
def submit(ref):
    """Submit through ``engine.execute(SubmitOrder(...))``; returns ``(order, reasons)``
    (reasons [] when it went through). Takes the rows (``account=ref["hedge"]``,
    ``instrument=ref["eth"]``, ``venue=ref["sim_b"]``) and passes their codes."""
    from orders import engine
    from orders.domain.commands import SubmitOrder
    from orders.domain.errors import OrderRiskDenied

    def submit_(**kw):
        args = {
            "account": ref["demo"],
            "instrument": ref["btc"],
            "side": "buy",
            "type": "limit",
            "quantity": D("0.01"),
            "price": D("60000.00"),
            "venue": ref["sim_a"],
        }
        args.update(kw)
        account, instrument, venue = args.pop("account"), args.pop("instrument"), args.pop("venue")
        command = SubmitOrder(
            account=account.code,
            symbol=instrument.symbol,
            venue=None if venue is None else venue.name,
            **args,
        )
        try:
            return engine.execute(command).order, []
        except OrderRiskDenied as exc:
            return exc.order, exc.reasons

    return submit_


def checks_of(reasons) -> list[str]:
    return [r["check"] for r in reasons]
