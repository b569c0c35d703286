"""Venue rows are validated (venues/validation.py) in the admin and the API; a venue
that cannot be driven at run time is MISCONFIGURED, once, not a traceback per attempt
(issue 12, item 6)."""

from __future__ import annotations

import logging
import threading

import pytest

from tests.conftest import limit_order

pytestmark = pytest.mark.django_db(transaction=True)

GOOD = {
    "name": "kraken-1",
    "driver": "ccxt",
    "exchange_id": "kraken",
    "base_url": "",
    "api_key_env": "OMS_VENUE_KRAKEN_1_KEY",
    "secret_env": "OMS_VENUE_KRAKEN_1_SECRET",
    "enabled": True,
}


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("OMS_VENUE_KRAKEN_1_KEY", "k")
    monkeypatch.setenv("OMS_VENUE_KRAKEN_1_SECRET", "s")


@pytest.fixture
def redis_clean():
    from omsweb.redis_client import client

    def wipe() -> None:
        for key in client().scan_iter("oms:venue:*"):
            client().delete(key)

    wipe()
    yield client()
    wipe()


# --- the rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change,field",
    [
        ({"exchange_id": "À"}, "exchange_id"),
        ({"exchange_id": ""}, "exchange_id"),
        ({"driver": "fox"}, "driver"),
        ({"base_url": "ftp://host/x"}, "base_url"),
        ({"base_url": "http://"}, "base_url"),
        ({"base_url": "http://host:99999"}, "base_url"),
        ({"base_url": "http://u:p@host/"}, "base_url"),
        ({"base_url": "http://host/?q=1"}, "base_url"),
        ({"driver": "sim", "exchange_id": "binance", "base_url": ""}, "base_url"),
    ],
)
def test_field_problems_name_the_field(change, field):
    from types import SimpleNamespace

    from venues.validation import field_problems

    assert set(field_problems(SimpleNamespace(**{**GOOD, **change}))) == {field}


FIX = {"driver": "fix", "fix_host": "127.0.0.1", "fix_port": 9881, "sender_comp_id": "OMS",
       "target_comp_id": "SIMEX"}  # fmt: skip


@pytest.mark.parametrize(
    "change,field,why",
    [
        ({"fix_host": ""}, "fix_host", "a fix venue needs the venue's FIX host"),
        ({"fix_host": "http://h"}, "fix_host", "is not a host name or IP address"),
        ({"fix_port": None}, "fix_port", "a fix venue needs the venue's FIX port"),
        ({"fix_port": 70000}, "fix_port", "out of range"),
        ({"sender_comp_id": ""}, "sender_comp_id", "a fix venue needs sender_comp_id"),
        ({"target_comp_id": "A=B"}, "target_comp_id", "letters, digits"),
    ],
)
def test_fix_venue_fields_then_problems_name_the_field(change, field, why):
    from types import SimpleNamespace

    from venues.validation import field_problems

    assert field_problems(SimpleNamespace(**{**GOOD, **FIX})) == {}
    problems = field_problems(SimpleNamespace(**{**GOOD, **FIX, **change}))
    assert set(problems) == {field} and why in problems[field]


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8101", "https://api.binance.com", "https://h.example:443/api/v3/"]
)
def test_good_urls_pass(url):
    from venues.validation import url_problem

    assert url_problem(url) is None


def test_credentials_when_variable_unset_then_named(creds, monkeypatch):
    from types import SimpleNamespace

    from venues.validation import credential_problem

    assert credential_problem(SimpleNamespace(**GOOD)) is None
    monkeypatch.delenv("OMS_VENUE_KRAKEN_1_SECRET")
    assert credential_problem(SimpleNamespace(**GOOD)) == (
        "secret_env",
        "environment variable OMS_VENUE_KRAKEN_1_SECRET (named in secret_env) is not set",
    )
    assert credential_problem(SimpleNamespace(**{**GOOD, "api_key_env": ""}))[0] == "api_key_env"


# --- the admin (the model's clean) and the API ------------------------------------------


def test_model_clean_when_bad_field_then_error_on_that_field(creds):
    from django.core.exceptions import ValidationError

    from venues.models import Venue

    with pytest.raises(ValidationError) as raised:
        Venue(**{**GOOD, "exchange_id": "À"}).full_clean()
    assert set(raised.value.message_dict) == {"exchange_id"}


def test_model_clean_when_credentials_missing_then_stays_disabled_with_reason():
    from venues.models import Venue

    venue = Venue(**GOOD)
    venue.full_clean()
    assert venue.enabled is False
    assert venue.disabled_reason.startswith(
        "api_key_env: environment variable OMS_VENUE_KRAKEN_1_KEY"
    )


def test_admin_form_refuses_bad_exchange_id(creds, refdata, client):
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("venue-admin", password="pw-123456"))
    body = {**GOOD, "exchange_id": "À", "rate_limits": "{}", "enabled": "on"}
    r = client.post("/admin/venues/venue/add/", body)
    assert r.status_code == 200  # the form again, with the error
    assert "unknown ccxt exchange id" in r.content.decode()
    from venues.models import Venue

    assert not Venue.objects.filter(name=GOOD["name"]).exists()


@pytest.mark.parametrize(
    "change,field",
    [
        ({"exchange_id": "À"}, "exchange_id"),
        ({"base_url": "not a url"}, "base_url"),
        ({"driver": "sim", "exchange_id": "binance", "base_url": ""}, "base_url"),
    ],
)
def test_api_when_bad_venue_then_400_naming_the_field(api, creds, change, field):
    r = api("admin").post("/api/v1/venues/", {**GOOD, **change})
    assert r.status_code == 400, r.text
    assert field in r.text


FIX_VENUE = {
    "name": "fixv-1", "driver": "fix", "exchange_id": "binance", "base_url": "",
    "fix_host": "127.0.0.1", "fix_port": 9881, "sender_comp_id": "OMS",
    "target_comp_id": "SIMEX", "enabled": True,
}  # fmt: skip


def test_api_fix_venue_then_created_with_its_fields_shown(api):
    r = api("admin").post("/api/v1/venues/", FIX_VENUE)
    assert r.status_code == 201, r.text
    body = r.json()
    assert {k: body[k] for k in FIX_VENUE} == FIX_VENUE
    listed = api("trader").get("/api/v1/venues/").json()["results"]
    assert next(v for v in listed if v["name"] == "fixv-1")["fix_port"] == 9881


@pytest.mark.parametrize(
    "change,field",
    [
        ({"fix_host": ""}, "fix_host"),
        ({"fix_port": None}, "fix_port"),
        ({"sender_comp_id": "O M S"}, "sender_comp_id"),
        ({"target_comp_id": ""}, "target_comp_id"),
    ],
)
def test_api_fix_venue_missing_its_fields_then_400_naming_the_field(api, change, field):
    r = api("admin").post("/api/v1/venues/", {**FIX_VENUE, **change})
    assert r.status_code == 400, r.text
    assert (
        field in r.json()["error"]["fields"] if "fields" in r.json()["error"] else field in r.text
    )


def test_api_when_credentials_missing_then_created_disabled_with_reason(api):
    r = api("admin").post("/api/v1/venues/", GOOD)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["enabled"] is False
    assert "OMS_VENUE_KRAKEN_1_KEY" in body["disabled_reason"]
    r = api("admin").patch(f"/api/v1/venues/{body['id']}/", {"enabled": True})
    assert r.status_code == 200 and r.json()["enabled"] is False  # still no credentials


def test_api_edit_of_an_enabled_venue_then_not_disabled_by_the_credential_rule(api):
    # OMS_VENUE_SIM_A_KEY (named on the demo venue) is not set here: the venue keeps working
    # state as it is; at run time a missing variable is MISCONFIGURED, not a silent switch
    sim_a = next(v for v in api("admin").get("/api/v1/venues/").json()["results"]
                 if v["name"] == "sim-a")  # fmt: skip
    r = api("admin").patch(f"/api/v1/venues/{sim_a['id']}/", {"base_url": "http://127.0.0.1:9/"})
    assert r.status_code == 200 and r.json()["enabled"] is True, r.text
    r = api("admin").patch(f"/api/v1/venues/{sim_a['id']}/", {"enabled": False})
    r = api("admin").patch(f"/api/v1/venues/{sim_a['id']}/", {"enabled": True})
    assert r.json()["enabled"] is False and "OMS_VENUE_SIM_A_KEY" in r.json()["disabled_reason"]


def test_api_patch_when_made_invalid_then_400(api, creds):
    venue = api("admin").get("/api/v1/venues/").json()["results"][0]
    r = api("admin").patch(f"/api/v1/venues/{venue['id']}/", {"base_url": ""})
    assert r.status_code == 400 and "base_url" in r.text  # a sim venue needs its URL


def test_order_to_venue_that_does_not_list_the_symbol_then_400(api, redis_clean):
    from venues.status import publish_markets

    publish_markets(redis_clean, "sim-a", ["ETH/USDT"])
    r = api("trader").post("/api/v1/orders/", limit_order(venue="sim-a"))
    assert r.status_code == 400, r.text
    assert r.json()["error"]["message"].endswith("venue sim-a does not list BTC/USDT")
    assert "venue" in r.text


# --- at run time: a state, a backoff, one WARNING per change -----------------------------


def test_check_config_when_misconfigured_then_one_warning_and_state_then_cleared(
    redis_clean, caplog, monkeypatch
):
    from types import SimpleNamespace

    from venues.status import check_config, misconfigured

    venue = SimpleNamespace(**{**GOOD, "exchange_id": "À"})
    with caplog.at_level(logging.WARNING, logger="oms.venues"):
        for _ in range(5):  # five attempts, one line
            assert check_config(redis_clean, venue).startswith("exchange_id")
        assert len(caplog.records) == 1 and "MISCONFIGURED" in caplog.records[0].message
        assert misconfigured(redis_clean, "kraken-1").startswith("exchange_id")
        monkeypatch.setenv("OMS_VENUE_KRAKEN_1_KEY", "k")
        monkeypatch.setenv("OMS_VENUE_KRAKEN_1_SECRET", "s")
        for _ in range(3):
            assert check_config(redis_clean, SimpleNamespace(**GOOD)) is None
    assert [r.message for r in caplog.records][1:] == ["venue kraken-1 configured again"]
    assert misconfigured(redis_clean, "kraken-1") is None


def test_venues_api_shows_misconfigured_with_reason(api, redis_clean):
    from venues.models import Venue
    from venues.status import check_config

    Venue.objects.filter(name="sim-a").update(api_key_env="ISO_TEST_NOT_SET")
    check_config(redis_clean, Venue.objects.get(name="sim-a"))
    rows = {v["name"]: v for v in api("trader").get("/api/v1/venues/").json()["results"]}
    assert rows["sim-a"]["status"] == "misconfigured"
    assert "ISO_TEST_NOT_SET" in rows["sim-a"]["status_detail"]


def test_reconcile_when_venue_misconfigured_then_skipped_quietly(refdata, redis_clean, caplog):
    from orders.models import ReconciliationRun
    from orders.tasks import reconcile_venue
    from venues.models import Venue

    Venue.objects.filter(name="sim-a").update(base_url="")
    venue = Venue.objects.get(name="sim-a")
    with caplog.at_level(logging.WARNING):
        results = [reconcile_venue.run(venue.pk) for _ in range(3)]
    assert all(r.startswith("skipped: base_url") for r in results)
    assert not ReconciliationRun.objects.filter(venue=venue).exists()
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert not any(r.exc_info for r in caplog.records)


def test_stream_when_venue_misconfigured_then_waits_with_backoff_not_tracebacks(
    refdata, redis_clean, caplog, monkeypatch
):
    from orders import stream
    from venues.models import Venue

    monkeypatch.setenv("OMS_VENUE_SIM_A_KEY", "k")  # the demo venue's variables
    monkeypatch.setenv("OMS_VENUE_SIM_A_SECRET", "s")
    Venue.objects.filter(name="sim-a").update(exchange_id="À", driver="ccxt")
    venue = Venue.objects.get(name="sim-a")
    waits: list[float] = []

    class Recording(threading.Event):
        def wait(self, timeout=None):  # noqa: ANN001, ANN202
            waits.append(timeout)
            if len(waits) == 4:
                Venue.objects.filter(pk=venue.pk).update(exchange_id="binance", driver="sim")
            if len(waits) > 8:
                self.set()  # bounded, whatever happens
            return self.is_set()

    stop = Recording()
    with caplog.at_level(logging.WARNING):
        configured = stream._configured(venue, stop)
    assert configured is not None and configured.driver == "sim"  # fixed: followed again
    assert waits == [5.0, 10.0, 20.0, 40.0]
    assert [r.levelname for r in caplog.records] == ["WARNING", "WARNING"]  # bad, fixed
    assert not any(r.exc_info for r in caplog.records)


def test_stream_when_venue_keeps_failing_then_one_warning_until_it_answers(
    refdata, redis_clean, caplog
):
    from orders.stream import Follower
    from venues.base import VenueUnavailable
    from venues.models import Venue

    venue = Venue.objects.get(name="sim-a")
    follower = Follower(venue_id=venue.pk, name="sim-a", adapter=None, redis=redis_clean)
    answers = iter([VenueUnavailable("sim-a: breaker open")] * 4 + [None])

    def update_marks() -> None:  # the round's one venue call when no order is working
        answer = next(answers)
        if answer is not None:
            raise answer

    follower._update_marks = update_marks
    with caplog.at_level(logging.WARNING, logger="oms.venuestream"):
        for _ in range(5):
            follower.next_mark = 0.0
            follower.step()
    assert [r.message for r in caplog.records] == [
        "sim-a poll failed: sim-a: breaker open",
        "sim-a polls again",
    ]


def test_blotter_venue_state_when_misconfigured_then_status_and_reason(refdata, redis_clean):
    from venues.models import Venue
    from venues.status import check_config, venue_states

    Venue.objects.filter(name="sim-a").update(base_url="")
    venue = Venue.objects.get(name="sim-a")
    check_config(redis_clean, venue)
    row = {"name": "sim-a", "driver": "sim", "enabled": True, "rate_limits": {}}
    (state,) = venue_states(redis_clean, [row], ["BTC/USDT"])
    assert state["status"] == "misconfigured"
    assert state["detail"].startswith("base_url: a sim venue needs")


def test_admin_enable_action_when_credentials_missing_then_stays_disabled(refdata, client):
    from django.contrib.auth.models import User

    from venues.models import Venue

    client.force_login(User.objects.create_superuser("venue-admin", password="pw-123456"))
    Venue.objects.filter(name="sim-b").update(enabled=False)
    Venue.objects.filter(name="sim-a").update(enabled=False, exchange_id="À", driver="ccxt")
    pks = list(Venue.objects.filter(name__in=["sim-a", "sim-b"]).values_list("pk", flat=True))
    r = client.post(
        "/admin/venues/venue/",
        {"action": "enable", "_selected_action": [str(pk) for pk in pks]},
        follow=True,
    )
    text = " | ".join(str(m) for m in r.context["messages"])
    assert "sim-a stays disabled: unknown ccxt exchange id" in text
    assert "sim-b stays disabled: api_key_env: environment variable OMS_VENUE_SIM_B_KEY" in text
    assert not Venue.objects.filter(enabled=True, pk__in=pks).exists()
    assert Venue.objects.get(name="sim-b").disabled_reason.startswith("api_key_env")
