"""``/api/v1/marketdata/`` over real HTTP, reading books published into the real Redis."""

from __future__ import annotations

import pytest

from marketdata.book import MdState
from tests.market import publish_book

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def books():
    from omsweb.redis_client import client

    r = client()
    stale = list(r.scan_iter("oms:book:*")) + list(r.scan_iter("oms:mark:*"))
    if stale:
        r.delete(*stale)
    keys = publish_book(r, "sim-a", "BTC/USDT", "60000")
    keys += publish_book(r, "sim-b", "BTC/USDT", "60010")
    keys += publish_book(r, "sim-c", "BTC/USDT", "99999", state=MdState.DOWN)
    yield
    r.delete(*keys)


def test_marketdata_lists_consolidated_quote_and_each_venue_state(api, books):
    r = api("trader").get("/api/v1/marketdata/")
    assert r.status_code == 200, r.text
    btc = next(s for s in r.json()["symbols"] if s["symbol"] == "BTC/USDT")
    cons = btc["consolidated"]
    assert cons["bid"]["venue"] == "sim-b" and cons["bid"]["price"] == "60010"
    assert cons["ask"]["venue"] == "sim-a" and cons["ask"]["price"] == "60000"
    assert cons["mid"] == "60005" and cons["live_venues"] == ["sim-a", "sim-b"]
    venues = {v["venue"]: v for v in btc["venues"]}
    assert venues["sim-c"]["state"] == "DOWN"
    assert venues["sim-a"]["state"] == "LIVE" and venues["sim-a"]["age_ms"] < 5_000
    assert {"bid", "ask", "age_ms", "sequence", "reason"} <= set(venues["sim-a"])


def test_consolidated_book_level_by_level(api, books):
    client = api("trader")
    for spelling in ("BTC-USDT", "BTCUSDT", "btc-usdt"):
        r = client.get(f"/api/v1/marketdata/{spelling}/book/?depth=5")
        assert r.status_code == 200, r.text
    body = r.json()
    assert body["symbol"] == "BTC/USDT"
    assert [lv["venue"] for lv in body["bids"]] == ["sim-b", "sim-a"]
    level = body["asks"][0]
    assert set(level) == {"venue", "price", "fee_adjusted_price", "quantity", "age_ms"}


@pytest.mark.parametrize("depth", ["0", "101", "x", "-1"])
def test_bad_depth_is_a_400_naming_the_field(api, books, depth):
    r = api("trader").get(f"/api/v1/marketdata/BTC-USDT/book/?depth={depth}")
    assert r.status_code == 400
    assert "depth" in r.text and "error" in r.json()


def test_unknown_symbol_is_a_404(api, books):
    r = api("trader").get("/api/v1/marketdata/DOGE-USDT/book/")
    assert r.status_code == 404 and "unknown symbol" in r.json()["error"]["message"]


def test_marketdata_needs_authentication(api):
    assert api(None).get("/api/v1/marketdata/").status_code == 401
