"""Venue choice for orders sent without a venue (routing/venue_choice.py), against the
real database and Redis of the test run."""

from __future__ import annotations

import pytest

from routing.venue_choice import choose_venue

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


def test_first_enabled_venue_by_name_whose_breaker_is_not_open(venues):
    from venues.models import Venue

    first, second = venues[0], venues[1]
    assert choose_venue(instrument=None).name == first.venue
    first.record_failure(open_for_s=60.0)
    chosen = choose_venue(instrument=None)
    assert chosen.name == second.venue and isinstance(chosen, Venue)
    assert chosen.rate_limits == Venue.objects.get(name=second.venue).rate_limits
    Venue.objects.filter(name=second.venue).update(enabled=False)  # read fresh every order
    assert choose_venue(instrument=None).name != second.venue


def test_all_open_falls_back_to_the_first_and_none_enabled_is_none(venues):
    from venues.models import Venue

    for breaker in venues:
        breaker.record_failure(open_for_s=60.0)
    assert choose_venue(instrument=None).name == venues[0].venue
    Venue.objects.update(enabled=False)
    assert choose_venue(instrument=None) is None


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
    from types import SimpleNamespace

    return SimpleNamespace(symbol=symbol)


def test_routed_order_goes_only_to_a_venue_listing_the_instrument(venues, markets):
    from venues.models import Venue

    first, second = venues[0].venue, venues[1].venue
    markets(first, "ETH/USDT")  # the first venue by name does not trade BTC/USDT
    markets(second, "BTC/USDT", "ETH/USDT")
    assert choose_venue(instrument=_instrument("BTC/USDT")).name == second
    assert choose_venue(instrument=_instrument("ETH/USDT")).name == first
    # a newly added enabled venue whose markets are not known yet takes nothing
    Venue.objects.create(name="aaa-new", driver="sim", exchange_id="binance",
                         base_url="http://127.0.0.1:9", enabled=True)  # fmt: skip
    assert choose_venue(instrument=_instrument("BTC/USDT")).name == second
    assert choose_venue(instrument=_instrument("XRP/USDT")) is None


def test_routed_order_when_venue_listing_it_is_open_then_never_one_not_listing_it(venues, markets):
    first, second = venues
    markets(first.venue, "ETH/USDT")
    markets(second.venue, "BTC/USDT")
    second.record_failure(open_for_s=60.0)
    assert choose_venue(instrument=_instrument("BTC/USDT")).name == second.venue


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
