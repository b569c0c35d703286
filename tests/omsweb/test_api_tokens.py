"""API tokens are secrets (issue 13, item 4): only their hashes are stored, a token is
shown once, users rotate and revoke theirs, the admin lists and revokes them."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test import Client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),  # WhiteNoise
]

ORDERS = "/api/v1/orders/"


def _client(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Token {token}")


def _events(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "omsweb.api_tokens"]


def _login(username: str = "trader", password: str = "trader-pw-123"):
    return Client().post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
    )


def test_tokens_in_database_then_none_usable_as_stored(users):
    issued = set(users.values())
    with connection.cursor() as cursor:
        cursor.execute("SELECT digest, token_key FROM knox_authtoken")
        rows = cursor.fetchall()
        tables = connection.introspection.table_names(cursor)
    assert len(rows) == len(issued)
    assert "authtoken_token" not in tables
    for digest, token_key in rows:
        assert digest not in issued and token_key not in issued
        assert _client(digest).get(ORDERS).status_code == 401
        assert _client(token_key).get(ORDERS).status_code == 401
    for token in issued:
        assert token.startswith("oms_") and len(token) == 4 + 64
        assert _client(token).get(ORDERS).status_code == 200


def test_login_then_new_token_each_time_and_both_work(users):
    first, second = _login(), _login()
    assert first.status_code == second.status_code == 200
    assert first.json()["token"] != second.json()["token"]
    for response in (first, second):
        assert _client(response.json()["token"]).get(ORDERS).status_code == 200


def test_login_with_wrong_password_then_400_naming_no_token(users):
    response = _login(password="wrong")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "VALIDATION_ERROR"


def test_rotate_then_only_the_new_token_works(users, caplog):
    old = users["trader"]
    with caplog.at_level(logging.WARNING, logger="omsweb.api_tokens"):
        response = _client(old).post("/api/v1/auth/token/rotate/")
    assert response.status_code == 200
    new = response.json()["token"]
    assert new != old and new.startswith("oms_")
    assert _client(old).get(ORDERS).status_code == 401
    assert _client(new).get(ORDERS).status_code == 200
    assert _client(old).post("/api/v1/auth/token/rotate/").status_code == 401
    (line,) = _events(caplog)
    assert line.startswith("event=api_token_rotated user=trader key_id=")
    assert old not in line and new not in line


def test_revoke_then_token_refused_and_others_still_work(users, caplog):
    with caplog.at_level(logging.WARNING, logger="omsweb.api_tokens"):
        response = _client(users["trader"]).delete("/api/v1/auth/token/")
    assert response.status_code == 204
    r = _client(users["trader"]).get(ORDERS)
    assert r.status_code == 401 and r.json()["error"]["code"] == "AUTHENTICATION_FAILED"
    assert _client(users["risk"]).get(ORDERS).status_code == 200
    assert [line.split()[0] for line in _events(caplog)] == ["event=api_token_revoked"]


def test_rotate_or_revoke_with_a_session_then_401(users):
    from django.contrib.auth.models import User

    client = Client()
    client.force_login(User.objects.get(username="trader"))
    assert client.post("/api/v1/auth/token/rotate/").status_code == 401
    assert client.delete("/api/v1/auth/token/").status_code == 401
    assert _client(users["trader"]).get(ORDERS).status_code == 200


def test_admin_lists_tokens_without_secrets_and_revokes(users, caplog):
    from django.contrib.auth.models import User
    from knox.models import AuthToken

    admin = User.objects.get(username="admin")
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(admin)
    page = client.get("/admin/knox/authtoken/")
    assert page.status_code == 200
    assert not any(token.encode() in page.content for token in users.values())
    assert client.get("/admin/knox/authtoken/add/").status_code == 403
    row = AuthToken.objects.get(user__username="trader")
    with caplog.at_level(logging.WARNING, logger="omsweb.api_tokens"):
        response = client.post(
            "/admin/knox/authtoken/",
            {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
        )
    assert response.status_code == 302
    assert _client(users["trader"]).get(ORDERS).status_code == 401
    assert "event=api_token_revoked user=trader" in caplog.text and "actor=admin" in caplog.text


def test_clear_text_tokens_of_an_older_database_then_hashed_and_still_working(users):
    """The migration from DRF's clear-text table (omsweb/migrations/0001_*)."""
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import User

    migration = importlib.import_module("omsweb.migrations.0001_api_tokens_hashed")
    legacy = "0123456789abcdef0123456789abcdef01234567"  # DRF's 40 hex digits
    trader = User.objects.get(username="trader")
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
            "created timestamptz NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now(), %s)", [legacy, trader.pk])
    with connection.schema_editor() as editor:
        migration.hash_legacy_tokens(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM knox_authtoken WHERE digest = %s", [legacy])
        assert cursor.fetchone() == (0,)
    assert _client(legacy).get(ORDERS).status_code == 200


def test_demo_first_start_then_tokens_saved_once_and_kept_on_second_start(
    transactional_db, tmp_path
):
    import json

    from omsweb.demo import load_demo

    assert load_demo(tmp_path) is True
    path = tmp_path / "credentials.json"
    saved = path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    creds = json.loads(saved)
    assert set(creds) == {"admin", "risk", "trader"}
    for user in creds.values():
        assert _client(user["token"]).get(ORDERS).status_code == 200
    assert load_demo(tmp_path) is False
    assert path.read_text() == saved


def test_rotate_twice_with_one_token_then_second_refused_and_one_token_left(users):
    """Two concurrent rotations of one token: the second finds it gone, issues nothing."""
    from knox.models import AuthToken

    from omsweb import api_tokens
    from omsweb.token_auth import find

    token = find(users["trader"])
    assert api_tokens.rotate(token=token, actor="trader") is not None
    assert api_tokens.rotate(token=token, actor="trader") is None
    assert AuthToken.objects.filter(user__username="trader").count() == 1


def test_admin_rotates_a_token_then_new_one_shown_once_and_old_refused(users):
    import re

    from django.contrib.auth.models import User
    from knox.models import AuthToken

    User.objects.filter(username="admin").update(is_staff=True)
    client = Client()
    client.force_login(User.objects.get(username="admin"))
    row = AuthToken.objects.get(user__username="trader")
    page = client.post(
        "/admin/knox/authtoken/",
        {"action": "rotate_selected", "_selected_action": [row.pk]},
    )
    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    (new,) = re.findall(r"oms_[0-9a-f]{64}", page.content.decode())
    assert _client(users["trader"]).get(ORDERS).status_code == 401
    assert _client(new).get(ORDERS).status_code == 200
    listing = client.get("/admin/knox/authtoken/").content.decode()
    assert new not in listing
