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
