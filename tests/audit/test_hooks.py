"""What goes into the audit trail: risk limit and trading-state changes (the kill
switch), venue configuration changes from the API and the admin, admin actions, and
operators' decisions on unknown venue orders; each with who did it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from audit.models import AuditRecord
from orders.chain import verify

pytestmark = pytest.mark.django_db


@pytest.fixture
def ref(db):
    from omsweb.demo import ensure_reference_data
    from orders.models import Account, Instrument
    from venues.models import Venue

    ensure_reference_data()
    return {
        "account": Account.objects.get(code="DEMO"),
        "btc": Instrument.objects.get(symbol="BTC/USDT"),
        "venue": Venue.objects.get(name="sim-a"),
    }


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("boss", password="pw-123456-x")


def _last(stream: str) -> AuditRecord:
    return AuditRecord.objects.filter(stream=stream).order_by("-seq").first()


def test_limit_changes_are_audited_with_who_and_old_and_new(ref):
    from risk import services

    actor = services.operator("ops-1")
    limit = services.limit_create(
        actor=actor, kind="max_order_quantity", value="5", reason="new desk",
        account=ref["account"], instrument=ref["btc"],
    )  # fmt: skip
    services.limit_update(actor=actor, limit_id=limit.pk, value="7", reason="more room")
    services.limit_delete(actor=actor, limit_id=limit.pk, reason="desk closed")
    made, changed, deleted = AuditRecord.objects.filter(stream="risk").order_by("-seq")[:3][::-1]
    assert (made.action, made.actor, made.payload["new_value"]) == ("limit.created", "ops-1", "5")
    assert (changed.action, changed.payload["old_value"], changed.payload["new_value"]) == (
        "limit.updated", "5", "7"
    )  # fmt: skip
    assert changed.payload["reason"] == "more room" and changed.payload["account"] == "DEMO"
    assert (deleted.action, deleted.payload["new_value"]) == ("limit.deleted", None)
    assert verify() == []


def test_kill_switch_engage_and_release_are_audited(ref):
    from risk import services

    actor = services.operator("ops-2")
    services.trading_state_set(actor=actor, scope="account", state="HALTED",
                               reason="runaway algo", account=ref["account"])  # fmt: skip
    engaged = _last("risk")
    services.trading_state_set(actor=actor, scope="account", state="ACTIVE",
                               reason="fixed", account=ref["account"])  # fmt: skip
    released = _last("risk")
    assert (engaged.action, engaged.actor) == ("trading_state.engage", "ops-2")
    assert engaged.payload["new_state"] == "HALTED" and engaged.payload["target"] == "DEMO"
    assert (released.action, released.payload["old_state"]) == ("trading_state.release", "HALTED")
    assert released.seq == engaged.seq + 1 and released.prev_hash == engaged.hash


def test_a_venue_change_through_the_api_is_audited_with_old_and_new(ref, client, admin_user):
    client.force_login(admin_user)
    venue = ref["venue"]
    old_url = venue.base_url
    r = client.patch(
        f"/api/v1/venues/{venue.pk}/",
        {"base_url": "http://127.0.0.1:9/"},
        content_type="application/json",
    )
    assert r.status_code == 200, r.content
    record = _last("venues")
    assert (record.action, record.actor) == ("venue.change", "boss")
    assert record.payload["changes"] == {"base_url": [old_url, "http://127.0.0.1:9/"]}
    assert record.payload["via"] == "api" and record.payload["venue"] == "sim-a"


def test_venue_admin_actions_and_admin_log_entries_are_audited(ref, client, admin_user):
    client.force_login(admin_user)
    venue = ref["venue"]
    r = client.post("/admin/venues/venue/", {"action": "disable", "_selected_action": [venue.pk]})
    assert r.status_code == 302
    record = _last("venues")
    assert record.payload["changes"] == {"enabled": [True, False]}
    assert (record.actor, record.payload["via"]) == ("boss", "admin")

    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    LogEntry.objects.create(
        user=admin_user, content_type=ContentType.objects.get_for_model(venue),
        object_id=str(venue.pk), object_repr="sim-a", action_flag=CHANGE,
        change_message='[{"changed": {"fields": ["Base url"]}}]',
    )  # fmt: skip
    logged = _last("operator")
    assert (logged.action, logged.actor) == ("admin.change", "boss")
    assert logged.payload["object"] == "sim-a" and "Base url" in logged.payload["change"]


def test_adopting_an_unknown_venue_order_is_audited(ref, admin_user):
    from orders.models import UnknownVenueOrder
    from orders.reconcile import unknown_adopt

    unknown = UnknownVenueOrder.objects.create(
        venue=ref["venue"], venue_order_id="x-1", client_order_id="ext-1", symbol="BTC/USDT",
        side="buy", type="limit", quantity=D("1"), price=D("100"),
    )  # fmt: skip
    order = unknown_adopt(unknown_id=unknown.pk, account=ref["account"], user=admin_user)
    record = _last("operator")
    assert (record.action, record.actor) == ("recon.unknown_adopt", "boss")
    assert record.payload["order"] == order.pk and record.payload["venue_order_id"] == "x-1"
    assert verify() == []


def test_deleting_venues_in_the_admin_is_audited_with_their_settings(ref, client, admin_user):
    from venues.models import Venue

    client.force_login(admin_user)
    spare = [
        Venue.objects.create(name=f"spare-{n}", driver="ccxt", exchange_id="binance")
        for n in range(2)
    ]
    r = client.post(
        "/admin/venues/venue/",
        {"action": "delete_selected", "_selected_action": [v.pk for v in spare], "post": "yes"},
    )
    assert r.status_code == 302 and not Venue.objects.filter(name__startswith="spare-").exists()
    deleted = AuditRecord.objects.filter(stream="venues", action="venue.delete").order_by("seq")
    assert [(d.actor, d.payload["venue"]) for d in deleted] == [
        ("boss", "spare-0"),
        ("boss", "spare-1"),
    ]
    assert deleted[0].payload["settings"]["exchange_id"] == "binance"


# --- current rows against their last audited change -----------------------------------------


def test_rows_changed_by_sql_differ_from_their_last_audited_change(ref, client, admin_user):
    from django.db import connection

    from risk import services
    from risk.audited import verify_current as risk_rows
    from risk.models import RiskLimit, TradingState
    from venues.changes import verify_current as venue_rows

    client.force_login(admin_user)
    venue = ref["venue"]
    r = client.patch(f"/api/v1/venues/{venue.pk}/", {"enabled": False},
                     content_type="application/json")  # fmt: skip
    assert r.status_code == 200
    actor = services.operator("ops-3")
    limit = services.limit_create(actor=actor, kind="max_order_quantity", value="5",
                                  reason="desk", account=ref["account"])  # fmt: skip
    state = services.trading_state_set(actor=actor, scope="account", state="HALTED",
                                       reason="stop", account=ref["account"]).trading_state  # fmt: skip
    assert venue_rows()[0] == [] and risk_rows()[0] == []
    with connection.cursor() as cursor:  # behind the application's back
        cursor.execute("UPDATE venues_venue SET base_url = 'http://evil.test/' WHERE id = %s",
                       [venue.pk])  # fmt: skip
        cursor.execute(f"UPDATE {RiskLimit._meta.db_table} SET value = 500 WHERE id = %s",
                       [limit.pk])  # fmt: skip
        cursor.execute(f"UPDATE {TradingState._meta.db_table} SET state = 'ACTIVE' WHERE id = %s",
                       [state.pk])  # fmt: skip
    (venue_break,), _ = venue_rows()
    assert str(venue_break) == (
        f"audit:venues venue sim-a (id {venue.pk}): altered outside the audit trail: "
        "base_url not as last audited"
    )
    limit_break, state_break = risk_rows()[0]
    assert limit_break.record == f"limit max_order_quantity (id {limit.pk})"
    assert "value 500" in limit_break.problem
    assert state_break.record == f"trading state account DEMO (id {state.pk})"
    assert state_break.problem == "altered outside the audit trail: ACTIVE, last audited HALTED"
