"""What the blotter shows of market data: the ticket's consolidated quote with its venue,
each venue's state and book age per symbol, and a push when a state changes."""

from __future__ import annotations

import pytest

from marketdata.book import MdState
from tests.market import publish_book

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis():
    from omsweb.redis_client import client

    r = client()
    stale = list(r.scan_iter("oms:book:*")) + list(r.scan_iter("oms:mark:*"))
    if stale:
        r.delete(*stale)
    yield r
    stale = list(r.scan_iter("oms:book:*")) + list(r.scan_iter("oms:mark:*"))
    if stale:
        r.delete(*stale)


VENUES = [
    {"name": "sim-a", "driver": "sim", "enabled": True},
    {"name": "sim-b", "driver": "sim", "enabled": True},
]


def test_ticket_quote_is_consolidated_over_live_venues_with_its_venue(redis):
    from blotter.snapshot import read_quotes

    publish_book(redis, "sim-a", "BTC/USDT", "60000")
    publish_book(redis, "sim-b", "BTC/USDT", "60010")
    publish_book(redis, "sim-b", "ETH/USDT", "3000", state=MdState.STALE)
    quotes = read_quotes(redis, VENUES, ["BTC/USDT", "ETH/USDT"])
    assert quotes["BTC/USDT"]["bid"] == "60010" and quotes["BTC/USDT"]["bid_venue"] == "sim-b"
    assert quotes["BTC/USDT"]["ask"] == "60000" and quotes["BTC/USDT"]["ask_venue"] == "sim-a"
    assert "ETH/USDT" not in quotes  # no LIVE venue: no quote rather than a stale one


def test_venue_panel_has_state_and_age_per_symbol(redis):
    from venues.status import venue_states

    publish_book(redis, "sim-a", "BTC/USDT", "60000", age_s=0.3)
    publish_book(redis, "sim-a", "ETH/USDT", "3000", state=MdState.DOWN)
    (row,) = venue_states(redis, VENUES[:1], ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    md = {m["symbol"]: m for m in row["market_data"]}
    assert md["BTC/USDT"]["state"] == "LIVE" and 250 <= md["BTC/USDT"]["age_ms"] < 2_000
    assert md["ETH/USDT"]["state"] == "DOWN"
    assert md["SOL/USDT"]["state"] == "NONE"


def test_state_change_event_pushes_the_venue_status(monkeypatch):
    from blotter import push
    from marketdata.events import MarketDataStateChanged
    from omsweb import realtime
    from omsweb.demo import ensure_reference_data

    ensure_reference_data()
    sent = []
    monkeypatch.setattr(realtime, "publish_on_commit", lambda kind, **kw: sent.append((kind, kw)))
    push.on_event(MarketDataStateChanged("sim-a", "BTC/USDT", "STALE", "LIVE", "no update"))
    assert sent and sent[0][0] == "venue.status"
    assert sent[0][1]["venue"] == "sim-a"
    assert sent[0][1]["detail"] == "BTC/USDT market data STALE: no update"
