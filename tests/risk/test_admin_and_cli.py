"""The admin (risk pages, engage/release actions with a reason) and ``oms kill``."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from risk.models import RiskLimit, RiskLimitChange, TradingState, TradingStateChange

pytestmark = pytest.mark.django_db


@pytest.fixture
def people(ref, django_user_model):
    from django.contrib.auth.models import Group

    out = {}
    for name in ("risk", "trader"):
        user = django_user_model.objects.create_user(
            username=f"{name}-1", password="pw-123456", is_staff=True
        )
        user.groups.add(Group.objects.get(name=name))
        out[name] = user
    return out


def test_admin_risk_pages_for_risk_role_only(client, people):
    client.force_login(people["risk"])
    for page in ("risklimit", "tradingstate", "tradingstatechange", "risklimitchange"):
        assert client.get(f"/admin/risk/{page}/").status_code == 200, page
    client.force_login(people["trader"])
    assert client.get("/admin/risk/tradingstate/").status_code == 403


def test_admin_engage_and_release_actions_ask_for_a_reason(client, people, ref):
    state = TradingState.objects.create(scope="venue", venue=ref["sim_a"])
    client.force_login(people["risk"])
    url = "/admin/risk/tradingstate/"
    # the action first shows the reason form, changes nothing
    r = client.post(url, {"action": "engage_halted", "_selected_action": [state.pk]})
    assert r.status_code == 200 and b"reason" in r.content
    state.refresh_from_db()
    assert state.state == "ACTIVE"
    # with a reason: engaged, audited as the risk user from the admin
    r = client.post(
        url,
        {
            "action": "engage_halted",
            "_selected_action": [state.pk],
            "apply": "1",
            "reason": "venue incident",
        },
    )
    assert r.status_code == 302
    state.refresh_from_db()
    assert state.state == "HALTED" and state.changed_by == people["risk"]
    change = TradingStateChange.objects.get(trading_state=state)
    assert (change.source, change.reason, change.new_state) == ("admin", "venue incident", "HALTED")
    client.post(
        url,
        {"action": "release", "_selected_action": [state.pk], "apply": "1", "reason": "back"},
    )
    state.refresh_from_db()
    assert state.state == "ACTIVE"


def test_admin_limit_change_goes_through_the_service_with_reason(client, people, ref):
    limit = RiskLimit.objects.get(kind="max_open_orders", account=None, instrument=None)
    client.force_login(people["risk"])
    r = client.post(
        f"/admin/risk/risklimit/{limit.pk}/change/",
        {"value": "150", "breach_action": "", "change_reason": "fewer orders"},
    )
    assert r.status_code == 302, r.content[:2000]
    limit.refresh_from_db()
    assert limit.value == 150 and limit.updated_by_name == "risk-1"
    change = RiskLimitChange.objects.filter(limit=limit).order_by("-id").first()
    assert (change.action, change.reason, change.source) == ("updated", "fewer orders", "admin")
    r = client.post(
        f"/admin/risk/risklimit/{limit.pk}/change/",
        {"value": "-1", "breach_action": "", "change_reason": "x"},
    )
    assert r.status_code == 200  # the form shows the error
    limit.refresh_from_db()
    assert limit.value == 150


def test_oms_kill_engages_and_releases_from_the_console(ref, capsys):
    call_command("killswitch", "--scope", "venue", "--target", "sim-a", "--reason", "incident")
    state = TradingState.objects.get(scope="venue", venue=ref["sim_a"])
    assert state.state == "HALTED" and state.source == "cli"
    assert state.changed_by_name.startswith("console:")
    call_command("killswitch", "--scope", "venue", "--target", "sim-a", "--release",
                 "--reason", "over")  # fmt: skip
    state.refresh_from_db()
    assert state.state == "ACTIVE"
    call_command("killswitch", "--show")
    assert '"target": "sim-a"' in capsys.readouterr().out


def test_oms_kill_refuses_without_reason_unknown_target_or_trader_user(ref, people):
    with pytest.raises(CommandError, match="reason"):
        call_command("killswitch")
    with pytest.raises(CommandError, match="unknown venue"):
        call_command("killswitch", "--scope", "venue", "--target", "nowhere", "--reason", "x")
    with pytest.raises(CommandError, match="risk or admin"):
        call_command("killswitch", "--user", "trader-1", "--reason", "x")
    assert not TradingState.objects.filter(state="HALTED").exists()


def test_oms_kill_subcommand_passes_its_options_through():
    from omsweb.cli import build_parser

    args, rest = build_parser().parse_known_args(
        ["kill", "--scope", "account", "--target", "DEMO", "--reason", "why"]
    )
    assert args.command == "kill" and rest == ["--scope", "account", "--target", "DEMO",
                                               "--reason", "why"]  # fmt: skip


def test_admin_add_state_for_a_new_scope_engages_it_and_checks_the_scope(client, people, ref):
    client.force_login(people["risk"])
    r = client.post(
        "/admin/risk/tradingstate/add/",
        {"scope": "venue", "state": "HALTED", "change_reason": "no target"},
    )
    assert r.status_code == 200 and b"needs a target" in r.content  # form error, nothing saved
    assert not TradingState.objects.exists()
    r = client.post(
        "/admin/risk/tradingstate/add/",
        {
            "scope": "account",
            "account": ref["demo"].pk,
            "state": "HALTED",
            "change_reason": "desk review",
        },
    )
    assert r.status_code == 302, r.content[:1500]
    state = TradingState.objects.get(scope="account", account=ref["demo"])
    assert state.state == "HALTED" and state.reason == "desk review"
    assert TradingStateChange.objects.get(trading_state=state).source == "admin"
