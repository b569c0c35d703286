"""No API token in any log line (issue 13, item 4): the forms a token takes in a log
message are redacted, in this process and in the real web server's log."""

from __future__ import annotations

import io
import logging
import time

import pytest

from omsweb.logredact import redact

TOKEN = "oms_" + "0123456789abcdef" * 4
LEGACY = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f'127.0.0.1:5 - "WebSocket /ws/blotter/?token={TOKEN}&x=1" [accepted]',
            '127.0.0.1:5 - "WebSocket /ws/blotter/?token=[REDACTED]&x=1" [accepted]',
        ),
        (f"Authorization: Token {LEGACY}", "Authorization: Token [REDACTED]"),
        (f"headers {{'Authorization': 'token {LEGACY}'}}", "headers {'Authorization': 'token [REDACTED]'}"),
        (f'body {{"token": "{TOKEN}"}}', 'body {"token": "[REDACTED]"}'),
        (f"subprotocols ['oms.v1', 'oms.token.{TOKEN}']", "subprotocols ['oms.v1', 'oms.token.[REDACTED]']"),
        (f"saw {TOKEN} somewhere", "saw oms_[REDACTED] somewhere"),
        # not secrets: left alone
        ("guard: token bucket refilled, acquired 5", "guard: token bucket refilled, acquired 5"),
        ("event=api_token_revoked key_id=oms_0123456789a", "event=api_token_revoked key_id=oms_0123456789a"),
    ],
)  # fmt: skip
def test_redact_when_line_holds_a_token_then_replaced(line, expected):
    assert redact(line) == expected


def test_log_record_with_token_in_args_then_every_handler_sees_it_redacted():
    """Installed when settings load: records made by any logger, written by any handler."""
    from django.conf import settings

    assert settings.configured
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("uvicorn.error.redaction-test")
    logger.addHandler(handler)
    try:
        logger.warning('%s - "WebSocket %s" [accepted]', "127.0.0.1:1", f"/ws/?token={TOKEN}")
        logger.warning("Authorization: Token %s", LEGACY)
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert TOKEN not in text and LEGACY not in text
    assert text.count("[REDACTED]") == 2


@pytest.mark.django_db(transaction=True)
def test_websocket_with_query_token_then_web_log_has_no_token(users, tmp_path):
    from websockets.sync.client import connect

    from omsweb.cli import web_argv
    from tests.conftest import Proc, free_port, test_database_env, wait_http

    port, log = free_port(), tmp_path / "web.log"
    proc = Proc(web_argv("127.0.0.1", port), test_database_env(), log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
        token = users["trader"]
        with connect(f"ws://127.0.0.1:{port}/ws/blotter/?token={token}", open_timeout=5) as ws:
            ws.recv(timeout=5)  # refused: a token in the URL is not accepted
        deadline = time.monotonic() + 5
        while "WebSocket /ws/blotter/" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.stop()
    text = log.read_text()
    assert "/ws/blotter/?token=[REDACTED]" in text
    assert token not in text
