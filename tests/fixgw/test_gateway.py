"""``oms fixgw`` as a real process on the test database, driven by a simplefix client.

One gateway for the module (its sessions are read at start). The module's rows are
committed by the fixture; the tests' own database use is rolled back, never flushed, so the
rows stay under the gateway."""

from __future__ import annotations

import sys

import pytest

from omsweb.stack import Proc, free_port, wait_for
from tests.conftest import test_database_env as database_env
from tests.fixgw.client import FixClient

pytestmark = pytest.mark.django_db  # the test database exists (rows: the fixture's)


@pytest.fixture(scope="module")
def gateway(django_db_setup, django_db_blocker, tmp_path_factory):
    from django.contrib.auth.models import User

    from fixgw.models import FixSession
    from omsweb import api_tokens

    with django_db_blocker.unblock():
        fixer = User.objects.create_user(username="fixer", password="fixer-pw-123")
        other = User.objects.create_user(username="other", password="other-pw-123")
        tokens = {u.username: api_tokens.issue(user=u, source="test") for u in (fixer, other)}
        FixSession.objects.create(sender_comp_id="FIXER", target_comp_id="OMS", user=fixer)
        FixSession.objects.create(
            sender_comp_id="OFF", target_comp_id="OMS", user=fixer, enabled=False
        )
        env = database_env()
    home = tmp_path_factory.mktemp("fixgw")
    env["OMS_HOME"] = str(home)
    port = free_port()
    log = home / "fixgw.log"
    proc = Proc([sys.executable, "-m", "omsweb.cli", "fixgw", "--port", str(port)],
                env, log)  # fmt: skip
    try:
        wait_for(lambda: "ready" in log.read_text() or not proc.alive(), timeout=30)
        assert proc.alive(), log.read_text()
        yield port, tokens
    finally:
        proc.stop()
        with django_db_blocker.unblock():
            User.objects.filter(username__in=["fixer", "other"]).delete()


def logon(port: int, sender: str, username: str | None, token: str | None):
    client = FixClient(port, sender, "OMS")
    client.logon(username, token)
    return client, client.receive()


def test_logon_with_user_and_token_then_logged_on(gateway):
    port, tokens = gateway
    client, reply = logon(port, "FIXER", "fixer", tokens["fixer"])
    try:
        assert reply is not None and reply.get(35) == b"A"
        client.send("5")
        assert client.receive().get(35) == b"5"
    finally:
        client.close()


@pytest.mark.parametrize(
    ("sender", "username", "token", "text"),
    [
        ("FIXER", "fixer", "not-a-token", b"Password (554): Invalid token."),
        ("FIXER", "fixer", None, b"Logon must carry the user's API token in Password (554)"),
        ("FIXER", None, "x", b"Logon must carry the user name in Username (553)"),
        ("FIXER", "other", "OTHER", b"Username (553) 'other' does not match this session's user"),
        ("OFF", "fixer", "FIXER", b"session OFF->OMS is disabled"),
    ],
)
def test_logon_refused_then_logout_with_reason(gateway, sender, username, token, text):
    port, tokens = gateway
    token = tokens.get(token.lower(), token) if token else None
    client, reply = logon(port, sender, username, token)
    try:
        assert reply is not None and reply.get(35) == b"5", reply
        assert reply.get(58) == b"Rejected Logon Attempt: " + text  # QuickFIX's prefix
        assert client.receive() is None  # then the gateway disconnects
    finally:
        client.close()


def test_logon_unknown_comp_id_then_disconnected(gateway):
    port, _ = gateway
    client, reply = logon(port, "NOBODY", "fixer", "x")
    client.close()
    assert reply is None


def test_unsupported_application_message_then_business_reject(gateway):
    port, tokens = gateway
    client, reply = logon(port, "FIXER", "fixer", tokens["fixer"])
    try:
        assert reply.get(35) == b"A"
        # a MarketDataRequest: the gateway takes orders only
        client.send("V", (262, "md-1"), (263, "0"), (264, "1"), (267, "1"), (269, "0"),
                    (146, "1"), (55, "BTC/USDT"))  # fmt: skip
        reject = client.receive()
        assert reject.get(35) == b"j" and reject.get(380) == b"3"  # unsupported type
    finally:
        client.close()
