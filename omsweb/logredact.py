"""No API token reaches a log line.

Every log record's message is redacted where it is made, by a log record factory
installed when settings load (so in the web server, the workers, beat and the CLI):
whichever handler then writes it (uvicorn's own, whose WebSocket lines carry the
request path and query, Django's console handler, Celery's) only ever sees
``[REDACTED]``. A filter on handlers would miss any handler configured after it
(uvicorn configures its own before the app loads, Celery its own at worker start).

Redacted: ``token=<value>`` (query strings, ``key=value`` and JSON forms), the value
after ``Token `` / ``Bearer `` (an ``Authorization`` header), the ``oms.token.<value>``
WebSocket subprotocol, and any ``oms_`` token wherever it stands. The lookup key
(``key_id=oms_`` and 11 hex digits, ``omsweb/api_tokens.py``) is not a secret and stays.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[REDACTED]"
_VALUE = r"[^\s\"'&,;)\]}]+"
_RULES = [
    # ?token=..., token=..., "token": "...", access_token=...
    re.compile(r"(?i)(\b(?:access_|auth_)?token\b[\"']?\s*[=:]\s*[\"']?)" + _VALUE),
    # Authorization: Token <key> / Bearer <key> (a long value with a digit, not prose)
    re.compile(r"(?i)(\b(?:token|bearer)\s+)(?=[^\s\"']*\d)[^\s\"'&,;]{16,}"),
    # the WebSocket subprotocol form (blotter/auth.py)
    re.compile(r"(?i)(\boms\.token\.)" + _VALUE),
    # a token of ours anywhere
    re.compile(r"(\boms_)[0-9a-f]{64}"),
]


def redact(text: str) -> str:
    for rule in _RULES:
        text = rule.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def install() -> None:
    """Redact every log record made in this process from now on (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "redacts_secrets", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it when emitting
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        return record

    factory.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
