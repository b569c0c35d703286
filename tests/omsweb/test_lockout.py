"""Logins resist guessing (issue 13, item 3): wrong passwords lock a client out on each
of the three password logins, the right one is then refused until the lock is released
(by an admin, a command, or the cool-off), and both are logged."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),  # WhiteNoise
]

LIMIT = 5
WRONG, RIGHT = "wrong-password", "admin-pw-123"


def _try(client: Client, endpoint: str, password: str, username: str = "admin"):
    if endpoint == "/api/v1/auth/token/":
        body = {"username": username, "password": password}
        return client.post(endpoint, body, content_type="application/json")
    return client.post(endpoint, {"username": username, "password": password})


def _accepted(endpoint: str, response) -> bool:
    return response.status_code in (200, 302) and (
        response.status_code == 302 or endpoint == "/api/v1/auth/token/"
    )


@pytest.fixture
def staff_admin(users):
    from django.contrib.auth.models import User

    User.objects.filter(username="admin").update(is_staff=True)  # the admin site wants staff


ENDPOINTS = ["/admin/login/", "/login/", "/api/v1/auth/token/"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_30_wrong_passwords_then_locked_out_and_right_one_refused_until_reset(
    endpoint, staff_admin, caplog
):
    client = Client()
    with caplog.at_level(logging.WARNING, logger="omsweb.lockout"):
        answers = [_try(client, endpoint, WRONG).status_code for _ in range(30)]
        locked = _try(client, endpoint, RIGHT)
    refused = 400 if endpoint.startswith("/api/") else 200  # the form again, with errors
    assert answers == [refused] * (LIMIT - 1) + [429] * (30 - LIMIT + 1)
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 14 * 60
    text = locked.content.decode()
    assert "Locked out" in text and "user admin from 127.0.0.1" in text and "UTC" in text
    if endpoint.startswith("/api/"):
        error = locked.json()["error"]
        assert error["code"] == "LOCKED_OUT" and error["retry_after"] > 14 * 60
        assert "locked_until" in error
    lines = [r.getMessage() for r in caplog.records if r.name == "omsweb.lockout"]
    assert lines[0].startswith("event=login_locked_out user=admin ip=127.0.0.1")

    with caplog.at_level(logging.WARNING, logger="omsweb.lockout"):
        call_command("axes_reset_username", "admin")
    assert "event=login_lock_released user=admin ip=127.0.0.1" in caplog.text
    assert "reason=reset" in caplog.text
    assert _accepted(endpoint, _try(Client(), endpoint, RIGHT))
    # both are in the operator audit stream, chained (``oms audit verify``)
    from audit.models import AuditRecord

    audited = AuditRecord.objects.filter(stream="operator", actor="axes").order_by("seq")
    assert [(r.action, r.payload["user"]) for r in audited] == [
        ("login_locked_out", "admin"),
        ("login_lock_released", "admin"),
    ]


def test_locked_address_then_other_addresses_still_log_in(staff_admin):
    client = Client()
    for _ in range(LIMIT):
        _try(client, "/login/", WRONG)
    assert _try(client, "/login/", RIGHT).status_code == 429
    elsewhere = Client(REMOTE_ADDR="10.1.2.3")
    assert _try(elsewhere, "/login/", RIGHT).status_code == 302


def test_wrong_passwords_for_many_users_then_address_locked_for_all(staff_admin):
    client = Client()
    for i in range(LIMIT):
        _try(client, "/login/", WRONG, username=f"guess-{i}")
    assert _try(client, "/login/", RIGHT).status_code == 429


def test_cool_off_passed_then_right_password_accepted_and_release_logged(staff_admin, caplog):
    from axes.models import AccessAttempt
    from django.utils import timezone

    client = Client()
    for _ in range(LIMIT):
        _try(client, "/api/v1/auth/token/", WRONG)
    assert _try(client, "/api/v1/auth/token/", RIGHT).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    with caplog.at_level(logging.WARNING, logger="omsweb.lockout"):
        response = _try(client, "/api/v1/auth/token/", RIGHT)
    assert response.status_code == 200 and response.json()["token"].startswith("oms_")
    assert "event=login_lock_released user=admin" in caplog.text
    assert "reason=cool_off_passed" in caplog.text


def test_admin_releases_a_lock_in_the_admin(staff_admin, caplog):
    from axes.models import AccessAttempt
    from django.contrib.auth.models import User

    for _ in range(LIMIT):
        _try(Client(REMOTE_ADDR="10.9.9.9"), "/login/", WRONG, username="trader")
    attempt = AccessAttempt.objects.get(username="trader")
    operator = Client()
    operator.force_login(User.objects.get(username="admin"))
    page = operator.get("/admin/axes/accessattempt/")
    assert page.status_code == 200 and b"10.9.9.9" in page.content
    with caplog.at_level(logging.WARNING, logger="omsweb.lockout"):
        operator.post(
            "/admin/axes/accessattempt/",
            {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
        )
    assert not AccessAttempt.objects.exists()
    assert "event=login_lock_released user=trader ip=10.9.9.9" in caplog.text
    good = _try(Client(REMOTE_ADDR="10.9.9.9"), "/login/", "trader-pw-123", username="trader")
    assert good.status_code == 302


def test_forwarded_for_header_changes_nothing_over_real_http(web_server, users):
    """uvicorn runs without proxy headers: a client cannot pose as many addresses."""
    import requests

    url = web_server + "/api/v1/auth/token/"
    codes = [
        requests.post(
            url,
            json={"username": "trader", "password": WRONG},
            headers={"X-Forwarded-For": f"10.0.0.{i}"},
            timeout=10,
        ).status_code
        for i in range(LIMIT + 2)
    ]
    right = requests.post(url, json={"username": "trader", "password": "trader-pw-123"}, timeout=10)
    assert codes == [400] * (LIMIT - 1) + [429] * 3
    assert right.status_code == 429 and right.json()["error"]["code"] == "LOCKED_OUT"
