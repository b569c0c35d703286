"""``GET /api/v1/tca/`` and ``GET /api/v1/routing/scores/`` over real HTTP (uvicorn) on
orders traded through the in-process engine harness: figures, aggregates without double
counting, who sees which account, and 400s naming the field."""

from __future__ import annotations

import time
from decimal import Decimal as D

import pytest

from marketdata.store import mark_history_key, record_mark
from routing import tca
from tests.orders.engine_harness import fill, installed
from tests.routing.test_tca_engine import _parent

pytestmark = pytest.mark.django_db(transaction=True)

SYMBOL = "BTC/USDT"


@pytest.fixture
def traded(api, monkeypatch):
    """DEMO: a buy sent to sim-a (arrival 60000, filled at 60006) and a parent buy whose
    two children filled at sim-a (0.004 at 60003, 0.006 at 60008); HEDGE: a sell filled at 59994."""
    from omsweb.redis_client import client

    redis = client()
    keys = (tca.DUE_KEY, tca.ARRIVALS_WATERMARK_KEY, mark_history_key(SYMBOL))
    redis.delete(*keys)
    harness = installed(monkeypatch)
    h = next(harness)
    record_mark(redis, SYMBOL, D("60000"), time.time() - 1)
    h.venue.on_submit(
        fill("0.01", "59994"), fill("0.01", "60006"), fill("0.004", "60003"),
        fill("0.006", "60008"),
    )  # fmt: skip
    hedge = h.submit(account="HEDGE", side="sell", price=D("59990"))
    h.run_queued()  # filled: no resting sell for the buys below to cross
    direct = h.submit(price=D("60010"))
    parent = _parent("0.01")
    child = dict(parent_id=parent.pk, time_in_force="IOC", price=D("60010"))
    h.submit(**child, quantity=D("0.004"))
    h.submit(**child, quantity=D("0.006"))
    h.run_queued()
    yield {"direct": direct.pk, "parent": parent.pk, "hedge": hedge.pk}
    next(harness, None)  # its clean-up
    redis.delete(*keys)


def test_tca_as_trader_then_own_accounts_per_order_and_aggregates(api, traded):
    # Act
    r = api("trader").get("/api/v1/tca/")
    # Assert
    assert r.status_code == 200, r.text
    body = r.json()
    orders = {o["order_id"]: o for o in body["orders"]}
    assert set(orders) == {traded["direct"], traded["parent"]}  # not HEDGE's
    assert body["orders_total"] == 2
    direct, parent = orders[traded["direct"]], orders[traded["parent"]]
    assert (direct["venue"], direct["routed"], direct["slippage_bp"]) == ("sim-a", False, "1")
    assert direct["arrival_mid"] == "60000" and direct["average_price"] == "60006"
    assert (parent["venue"], parent["routed"], parent["venues"]) == (None, True, ["sim-a"])
    assert parent["filled_quantity"] == "0.01" and parent["slippage_bp"] == "1"
    # aggregates: three fills at sim-a in two top-level orders, never a child twice
    (venue,) = body["by_venue"]
    assert (venue["venue"], venue["orders"], venue["fills"]) == ("sim-a", 2, 3)
    assert venue["slippage_bp"] == "1"
    (day,) = body["by_day"]
    assert (day["orders"], day["fills"]) == (2, 3)
    bins = {(b["venue"], b["lower_bp"]): b["fills"] for b in body["slippage_histogram"]}
    assert bins == {("sim-a", 0): 1, ("sim-a", 1): 2}  # 0.5 bp; 1 and 1.33 bp


def test_tca_as_risk_then_every_account_and_account_filter(api, traded):
    everything = api("risk").get("/api/v1/tca/").json()
    assert everything["orders_total"] == 3
    hedge = api("risk").get("/api/v1/tca/", params={"account": "HEDGE"}).json()
    assert [o["order_id"] for o in hedge["orders"]] == [traded["hedge"]]
    assert hedge["orders"][0]["slippage_bp"] == "1"  # sold 6 below the arrival mid


def test_tca_filters_symbol_venue_since(api, traded):
    trader = api("trader")
    same = trader.get("/api/v1/tca/", params={"symbol": "BTC-USDT", "venue": "sim-a"}).json()
    assert same["orders_total"] == 2
    other = trader.get("/api/v1/tca/", params={"symbol": "ETH/USDT"}).json()
    assert other["orders"] == [] and other["by_venue"] == [] and other["by_day"] == []
    nothing_there = trader.get("/api/v1/tca/", params={"venue": "sim-b"}).json()
    assert nothing_there["orders_total"] == 0
    later = trader.get("/api/v1/tca/", params={"since": "2999-01-01"}).json()
    assert later["orders_total"] == 0
    earlier = trader.get("/api/v1/tca/", params={"since": "2020-01-01T00:00:00Z"}).json()
    assert earlier["orders_total"] == 2


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"account": "HEDGE"}, "account"),  # exists, but not the trader's
        ({"account": "NOPE"}, "account"),
        ({"symbol": "DOGE/EUR"}, "symbol"),
        ({"venue": "nowhere"}, "venue"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-13-01"}, "since"),
        ({"since": "2026-01-01T25:00:00"}, "since"),
    ],
)
def test_tca_when_filter_is_bad_then_400_naming_the_field(api, traded, params, field):
    r = api("trader").get("/api/v1/tca/", params=params)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field


def test_tca_when_not_logged_in_then_401(api, traded):
    assert api(None).get("/api/v1/tca/").status_code == 401


def test_scores_then_every_enabled_venue_and_instrument_with_evidence_where_any(api, traded):
    r = api("trader").get("/api/v1/routing/scores/", params={"symbol": SYMBOL})
    assert r.status_code == 200, r.text
    rows = {(s["venue"], s["symbol"]): s for s in r.json()["scores"]}
    seen = rows[("sim-a", SYMBOL)]
    assert seen["children"] == 2 and seen["fill_rate"] == "1" and seen["reject_rate"] == "0"
    assert D(seen["score"]) <= 1
    unseen = rows[("sim-b", SYMBOL)]
    assert unseen["score"] == "1" and unseen["children"] == 0 and unseen["updated_at"] is None
    bad = api("trader").get("/api/v1/routing/scores/", params={"venue": "nowhere"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "venue"
