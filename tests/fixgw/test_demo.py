import json

import pytest

from omsweb.demo import load_demo


@pytest.mark.django_db
def test_demo_then_trader_has_a_fix_session_in_credentials(tmp_path, settings):
    from fixgw.models import FixSession

    assert load_demo(tmp_path)

    fix = json.loads((tmp_path / "credentials.json").read_text())["trader"]["fix"]
    assert fix == {
        "host": settings.FIX_HOST,
        "port": settings.FIX_PORT,
        "sender_comp_id": "TRADER",
        "target_comp_id": settings.FIX_COMP_ID,
    }
    session = FixSession.objects.get(sender_comp_id="TRADER")
    assert session.user.username == "trader" and session.enabled


@pytest.mark.django_db
def test_demo_made_before_the_gateway_then_fix_session_added_on_next_start(tmp_path):
    from fixgw.models import FixSession

    assert load_demo(tmp_path)
    FixSession.objects.all().delete()
    creds = json.loads((tmp_path / "credentials.json").read_text())
    del creds["trader"]["fix"]
    (tmp_path / "credentials.json").write_text(json.dumps(creds))

    assert not load_demo(tmp_path)

    assert "fix" in json.loads((tmp_path / "credentials.json").read_text())["trader"]
    assert FixSession.objects.filter(sender_comp_id="TRADER").exists()
