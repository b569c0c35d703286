"""What the router may route to (routing/inputs.py: listing, breaker, enabled) and the
listing check of an order sent to a named venue (routing/venue_choice.py), against the
real database and Redis of the test run."""

from __future__ import annotations

import pytest

from routing.inputs import gather

pytestmark = pytest.mark.django_db


@pytest.fixture
def venues(db):
    from omsweb.demo import ensure_reference_data
    from omsweb.redis_client import client
    from venues.breaker import CircuitBreaker
    from venues.models import Venue

    ensure_reference_data()
    Venue.objects.update(enabled=True)
    names = list(Venue.objects.order_by("name").values_list("name", flat=True))
    breakers = [CircuitBreaker(client(), name) for name in names]
    for breaker in breakers:
        breaker.reset()
    yield breakers
    for breaker in breakers:
        breaker.reset()


def test_router_inputs_when_breaker_open_or_venue_disabled_then_said_per_venue(venues):
    from venues.models import Venue

    first, second = venues[0], venues[1]
    first.record_failure(open_for_s=60.0)
    Venue.objects.exclude(name__in=(first.venue, second.venue)).update(enabled=False)
    conditions = gather(_instrument("BTC/USDT")).conditions
    assert conditions[first.venue].breaker_open and conditions[first.venue].enabled
    assert not conditions[second.venue].breaker_open
    Venue.objects.filter(name=second.venue).update(enabled=False)  # read fresh every round
    assert second.venue not in gather(_instrument("BTC/USDT")).conditions


@pytest.fixture
def markets(venues):
    """Publish what each venue lists, as the adapter warm-up does; cleared after."""
    from omsweb.redis_client import client
    from venues.status import MARKETS_KEY, publish_markets

    published: list[str] = []

    def publish(name: str, *symbols: str) -> None:
        publish_markets(client(), name, symbols)
        published.append(name)

    yield publish
    for name in published:
        client().delete(MARKETS_KEY.format(name=name))


def _instrument(symbol: str):
    from decimal import Decimal
    from types import SimpleNamespace

    return SimpleNamespace(
        symbol=symbol, lot_size=Decimal("0.001"), min_notional=Decimal(5),
        tick_size=Decimal("0.01"),
    )  # fmt: skip


def test_router_inputs_when_venue_does_not_list_the_instrument_then_not_enabled(venues, markets):
    from venues.models import Venue

    first, second = venues[0].venue, venues[1].venue
    markets(first, "ETH/USDT")  # the first venue by name does not trade BTC/USDT
    markets(second, "BTC/USDT", "ETH/USDT")
    # a newly added enabled venue whose markets are not known yet takes nothing
    Venue.objects.create(name="aaa-new", driver="sim", exchange_id="binance",
                         base_url="http://127.0.0.1:9", enabled=True)  # fmt: skip
    inputs = gather(_instrument("BTC/USDT"))
    enabled = {name for name, c in inputs.conditions.items() if c.enabled}
    assert enabled == {second}
    assert inputs.notes[first] == "does not list BTC/USDT"
    assert {n for n, c in gather(_instrument("ETH/USDT")).conditions.items() if c.enabled} == {
        first,
        second,
    }


def test_explicit_venue_that_does_not_list_the_instrument_then_reason(venues, markets):
    from routing.venue_choice import listing_problem
    from venues.models import Venue

    first = Venue.objects.get(name=venues[0].venue)
    assert listing_problem(first, instrument=_instrument("BTC/USDT")) is None  # not known
    markets(first.name, "ETH/USDT")
    assert listing_problem(first, instrument=_instrument("BTC/USDT")) == (
        f"venue {first.name} does not list BTC/USDT"
    )
    assert listing_problem(first, instrument=_instrument("ETH/USDT")) is None
