"""Task messages are authenticated: a worker runs only what an OMS process sent.

Whoever can put a message on a queue could otherwise have a worker apply a made-up fill
(``oms.reports.apply``), cancel another account's order or sweep a kill switch. So
every message an OMS process publishes carries an HMAC-SHA256 (header ``oms_hmac``)
over what the task would do: its name, id and retry count, its arguments, the
callbacks it would trigger, and the OMS's own headers (``oms_*``, e.g. when it was
queued). The key is ``settings.OMS_TASK_KEY`` (``OMS_TASK_KEY``, or generated once into
``OMS_HOME``, mode 0600), which only OMS processes hold.

Signing happens in one place (``sign_message``, on Celery's ``before_task_publish``:
every publish of every OMS process, retries and beat included) and so does checking
(``AuthenticatedTask``, the Celery app's task class: every task a worker takes from the
broker, before it runs). A message without a valid HMAC (forged, altered, or signed
with another key) is refused: not run, acknowledged (so not redelivered) and logged at
WARNING as ``event=task_message_refused``.

An HMAC with one shared key rather than Celery's message signing (the ``auth``
serializer): that needs an X.509 key pair and certificate store for every process, for
the same guarantee between processes that trust each other. A captured message can be
sent again unchanged: every task is idempotent (it re-reads the order under lock).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping
from typing import Any

from celery import Task
from kombu.utils import json as kombu_json

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "oms_hmac"
OMS_HEADER_PREFIX = "oms_"
EMBED = ("callbacks", "errbacks", "chain", "chord")
REFUSED = "refused"


def _key() -> bytes:
    from django.conf import settings

    return str(settings.OMS_TASK_KEY).encode()


def digest(
    *,
    name: str,
    task_id: str,
    retries: int,
    args: Any,
    kwargs: Any,
    embed: Mapping[str, Any],
    oms_headers: Mapping[str, Any],
) -> str:
    """The HMAC of one task message, from its fields as published or as received (the
    same JSON either way: kombu's encoder, keys sorted)."""
    fields = {
        "task": name,
        "id": task_id,
        "retries": retries or 0,
        "args": list(args or ()),
        "kwargs": dict(kwargs or {}),
        "embed": {k: embed.get(k) for k in EMBED},
        "headers": {k: v for k, v in oms_headers.items() if k != SIGNATURE_HEADER},
    }
    text = kombu_json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hmac.new(_key(), text.encode(), hashlib.sha256).hexdigest()


def _oms_headers(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k.startswith(OMS_HEADER_PREFIX)}


def sign_message(
    sender: str | None = None, body: Any = None, headers: Any = None, **_: Any
) -> None:
    """``before_task_publish`` receiver: add the HMAC to a message (protocol 2) about to
    be published."""
    if headers is None or not isinstance(body, list | tuple) or len(body) != 3:
        return  # not a protocol-2 task message: left unsigned, so refused by workers
    args, kwargs, embed = body
    headers[SIGNATURE_HEADER] = digest(
        name=headers.get("task") or sender or "",
        task_id=headers.get("id") or "",
        retries=headers.get("retries") or 0,
        args=args,
        kwargs=kwargs,
        embed=embed or {},
        oms_headers=_oms_headers(headers),
    )


def refusal(name: str, request: Any) -> str | None:
    """Why the message behind ``request`` may not run, or None when its HMAC holds."""
    given = getattr(request, SIGNATURE_HEADER, None)
    if not given:
        return "unsigned"
    expected = digest(
        name=name,
        task_id=request.id or "",
        retries=request.retries or 0,
        args=request.args,
        kwargs=request.kwargs,
        embed={k: getattr(request, k, None) for k in EMBED},
        oms_headers=_oms_headers(vars(request)),
    )
    if not hmac.compare_digest(str(given), expected):
        return "bad signature"
    return None


class AuthenticatedTask(Task):
    """The OMS app's task class: a task taken from the broker runs only when its
    message's HMAC holds. A task called in-process (``task(...)``) is not a message and
    is not checked."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if not request.called_directly:
            reason = refusal(self.name, request)
            if reason is not None:
                log.warning(
                    "event=task_message_refused task=%s id=%s reason=%s",
                    self.name,
                    request.id,
                    reason.replace(" ", "_"),
                )
                return REFUSED
        return super().__call__(*args, **kwargs)
