"""The demo's FIX venue is opt-in (OMS_DEMO_FIX_VENUE=1): a valid fix venue row, sim-fix,
pointed at the FIX simulator ``oms up`` then runs."""

from __future__ import annotations

import pytest

from omsweb.demo import ensure_reference_data


@pytest.mark.django_db
def test_demo_without_the_setting_then_no_fix_venue(settings):
    from venues.models import Venue

    settings.DEMO_FIX_VENUE = False
    ensure_reference_data()
    assert not Venue.objects.filter(driver="fix").exists()


@pytest.mark.django_db
def test_demo_with_the_setting_then_sim_fix_a_valid_fix_venue(settings):
    from venues.models import Venue
    from venues.sim.server import DEMO_FIX_VENUE
    from venues.validation import field_problems

    settings.DEMO_FIX_VENUE = True
    ensure_reference_data()
    venue = Venue.objects.get(name="sim-fix")
    name, rest_port, fix_port = DEMO_FIX_VENUE
    assert (venue.driver, venue.fix_port, venue.base_url) == (
        "fix",
        fix_port,
        f"http://127.0.0.1:{rest_port}",
    )
    assert venue.api_key_env == "OMS_VENUE_SIM_FIX_KEY" and field_problems(venue) == {}
