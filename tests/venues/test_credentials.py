"""Venue credentials cannot be exfiltrated (issue 13, item 2): an admin registered a venue
whose ``api_key_env`` named ``SIMEX_API_SECRET`` and whose base URL pointed at a
listener; the listener received the secret. Now a venue reads only its own
``OMS_VENUE_<NAME>_KEY`` / ``_SECRET``, and changing where a venue's orders go or which
credentials they carry is logged as ``event=venue_config_changed``."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from venues import credentials, registry
from venues.models import Venue

LISTENER = "http://127.0.0.1:9"  # the attacker's; never reached in these tests


@pytest.fixture
def admin_api(users):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {users['admin']}")
    return client


def _venue(**fields):
    body = {"name": "evil", "driver": "ccxt", "exchange_id": "binance", "base_url": LISTENER}
    body.update(fields)
    return body


@pytest.mark.parametrize(
    ("name", "field", "expected"),
    [
        ("sim-a", "api_key_env", "OMS_VENUE_SIM_A_KEY"),
        ("sim-a", "secret_env", "OMS_VENUE_SIM_A_SECRET"),
        ("Kraken_2", "secret_env", "OMS_VENUE_KRAKEN_2_SECRET"),
    ],
)
def test_env_name_when_venue_named_then_prefixed_upper_case_non_alnum_underscored(
    name, field, expected
):
    assert credentials.env_name(name, field) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_key_env", "SIMEX_API_SECRET"),  # the exploit
        ("secret_env", "OMS_SECRET_KEY"),
        ("api_key_env", "OMS_VENUE_SIM_A_SECRET"),  # another venue's secret
        ("secret_env", "OMS_VENUE_EVIL_KEY"),  # its own key as the secret
    ],
)
def test_api_create_venue_when_credential_variable_not_its_own_then_400_naming_field(
    admin_api, field, value
):
    r = admin_api.post("/api/v1/venues/", _venue(**{field: value}), format="json")
    assert r.status_code == 400, r.content
    error = r.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert error["field"] == field
    assert "OMS_VENUE_EVIL_" in error["message"] and value in error["message"]
    assert not Venue.objects.filter(name="evil").exists()


def test_api_update_venue_when_credential_variable_not_its_own_then_400_and_unchanged(
    admin_api,
):
    venue = Venue.objects.get(name="sim-a")
    r = admin_api.patch(
        f"/api/v1/venues/{venue.pk}/",
        {"base_url": LISTENER, "api_key_env": "SIMEX_API_SECRET"},
        format="json",
    )
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "api_key_env"
    venue.refresh_from_db()
    assert venue.base_url != LISTENER and venue.api_key_env == "OMS_VENUE_SIM_A_KEY"


def test_api_rename_when_credential_variables_left_then_400(admin_api):
    venue = Venue.objects.get(name="sim-a")
    r = admin_api.patch(f"/api/v1/venues/{venue.pk}/", {"name": "sim-z"}, format="json")
    assert r.status_code == 400
    assert r.json()["error"]["field"] in ("api_key_env", "secret_env")


def test_api_venue_when_own_variables_then_created_and_change_audited(admin_api, caplog):
    with caplog.at_level(logging.WARNING, logger="venues.services"):
        r = admin_api.post(
            "/api/v1/venues/",
            _venue(api_key_env="OMS_VENUE_EVIL_KEY", secret_env="OMS_VENUE_EVIL_SECRET"),
            format="json",
        )
    assert r.status_code == 201, r.content
    assert "event=venue_config_changed venue=evil" in caplog.text
    assert "by=admin action=created" in caplog.text
    assert f"base_url=''->'{LISTENER}'" in caplog.text
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="venues.services"):
        r = admin_api.patch(
            f"/api/v1/venues/{r.json()['id']}/", {"base_url": "http://127.0.0.1:10"}, format="json"
        )
    assert r.status_code == 200, r.content
    (record,) = [x for x in caplog.records if "venue_config_changed" in x.getMessage()]
    assert record.levelno == logging.WARNING
    assert "by=admin action=changed" in record.getMessage()
    assert f"base_url='{LISTENER}'->'http://127.0.0.1:10'" in record.getMessage()
    assert "api_key_env" not in record.getMessage()  # only what changed


def test_api_venue_when_unaudited_field_changed_then_nothing_logged(admin_api, caplog):
    venue = Venue.objects.get(name="sim-a")
    with caplog.at_level(logging.WARNING, logger="venues.services"):
        r = admin_api.patch(f"/api/v1/venues/{venue.pk}/", {"enabled": False}, format="json")
    assert r.status_code == 200
    assert "venue_config_changed" not in caplog.text


def test_admin_venue_form_when_credential_variable_not_its_own_then_error_and_unchanged(
    client, users, caplog
):
    from django.contrib.auth.models import User

    User.objects.filter(username="admin").update(is_staff=True)
    client.force_login(User.objects.get(username="admin"))
    venue = Venue.objects.get(name="sim-a")
    form = {
        "name": "sim-a",
        "driver": "sim",
        "exchange_id": "binance",
        "base_url": LISTENER,
        "enabled": "on",
        "api_key_env": "SIMEX_API_SECRET",
        "secret_env": "OMS_VENUE_SIM_A_SECRET",
        "rate_limits": "{}",
    }
    r = client.post(f"/admin/venues/venue/{venue.pk}/change/", form)
    assert r.status_code == 200  # the form again, with the error
    assert b"OMS_VENUE_SIM_A_KEY" in r.content and b"errorlist" in r.content
    venue.refresh_from_db()
    assert venue.base_url != LISTENER

    with caplog.at_level(logging.WARNING, logger="venues.services"):
        r = client.post(
            f"/admin/venues/venue/{venue.pk}/change/",
            {**form, "api_key_env": "OMS_VENUE_SIM_A_KEY"},
        )
    assert r.status_code == 302, r.content[:3000]
    venue.refresh_from_db()
    assert venue.base_url == LISTENER
    assert "event=venue_config_changed venue=sim-a" in caplog.text
    assert f"by=admin action=changed base_url='http://127.0.0.1:8101'->'{LISTENER}'" in (
        caplog.text
    )


def _row(**kw):
    fields = {"name": "evil", "driver": "ccxt", "exchange_id": "binance", "base_url": LISTENER}
    fields.update({"api_key_env": "", "secret_env": "", **kw})
    return SimpleNamespace(**fields)


def test_registry_when_row_names_a_variable_outside_its_own_then_unreachable(monkeypatch):
    # a row written past the API and the admin (SQL, an old row): still refused on read
    registry.reset_adapters()
    monkeypatch.setenv("SIMEX_API_SECRET", "the-secret")
    with pytest.raises(registry.VenueConfigError, match="OMS_VENUE_EVIL_KEY") as info:
        registry.adapter_for(_row(api_key_env="SIMEX_API_SECRET"))
    assert "the-secret" not in str(info.value)
    with pytest.raises(registry.VenueConfigError, match="OMS_VENUE_EVIL_SECRET"):
        registry.config_for(_row(secret_env="OMS_VENUE_SIM_A_SECRET"))


def test_registry_when_row_names_its_own_variables_then_credentials_read(monkeypatch):
    monkeypatch.setenv("OMS_VENUE_EVIL_KEY", "k1")
    monkeypatch.setenv("OMS_VENUE_EVIL_SECRET", "s1")
    config = registry.config_for(
        _row(api_key_env="OMS_VENUE_EVIL_KEY", secret_env="OMS_VENUE_EVIL_SECRET")
    )
    assert (config.api_key, config.secret) == ("k1", "s1")


def test_migration_when_rows_name_other_variables_then_pointed_at_their_own(refdata):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("venues.migrations.0004_venue_credentials_own_variables")
    Venue.objects.filter(name="sim-a").update(
        api_key_env="SIMEX_API_KEY", secret_env="SIMEX_API_SECRET"
    )
    Venue.objects.filter(name="sim-b").update(api_key_env="", secret_env="")
    migration.own_variables(apps, None)
    rows = dict(Venue.objects.values_list("name", "api_key_env"))
    assert rows["sim-a"] == "OMS_VENUE_SIM_A_KEY"
    assert rows["sim-b"] == ""  # none named, none given
    assert Venue.objects.get(name="sim-a").secret_env == "OMS_VENUE_SIM_A_SECRET"
