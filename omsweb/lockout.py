"""Logins resist guessing: django-axes locks out a client after ``AXES_FAILURE_LIMIT``
wrong passwords in a row, per (user name, address) and per address, for
``AXES_COOLOFF_TIME`` after the last one, on every password login: the admin's, the
blotter's (``/login/``) and the API's (``POST /api/v1/auth/token/``), since all three go
through ``django.contrib.auth.authenticate`` with the request.

While locked, even the right password is refused: 429 with ``Retry-After``, a message
naming the lock and when it ends, as ``{"error": {"code": "LOCKED_OUT", ...}}`` under
``/api/``, as a page elsewhere. Axes keeps its records (Axes > Access attempts, failures
and logs in the admin); a lock-out and its release are logged at WARNING with stable
event names, ``event=login_locked_out`` and ``event=login_lock_released``. An admin
releases a lock by deleting its access attempt in the admin, or with
``manage.py axes_reset_username <user>`` / ``axes_reset_ip <address>`` / ``axes_reset``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from axes.models import AccessAttempt
from axes.signals import user_locked_out
from django.conf import settings
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.utils.html import format_html

import audit
from omsweb.errors import error_body

log = logging.getLogger(__name__)


def _cool_off() -> timedelta:
    return settings.AXES_COOLOFF_TIME


def _username(request: HttpRequest, credentials: dict[str, Any] | None) -> str:
    credentials = credentials or getattr(request, "axes_credentials", None) or {}
    return str(credentials.get("username") or "")


def _locked_until(request: HttpRequest) -> datetime:
    """The last failed attempt (this one) plus the cool-off: each attempt during a
    lock-out, even with the right password, starts the cool-off again."""
    started = getattr(request, "axes_attempt_time", None) or timezone.now()
    return started + _cool_off()


def response(
    request: HttpRequest, original_response: Any = None, credentials: Any = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the answer to a locked-out login attempt."""
    if not isinstance(credentials, dict):  # axes' async middleware passes (request, creds)
        credentials = None
    username = _username(request, credentials)
    until = _locked_until(request)
    retry_after = max(1, int((until - timezone.now()).total_seconds()))
    who = f"user {username or '(none)'} from {request.META.get('REMOTE_ADDR')}"
    message = (
        f"Locked out: too many failed logins ({settings.AXES_FAILURE_LIMIT}) for {who}; "
        f"logins are refused until {until:%Y-%m-%d %H:%M:%S} UTC (in {retry_after} s), "
        "or until an admin releases the lock."
    )
    if request.path.startswith("/api/"):
        body = error_body(
            "LOCKED_OUT", message, locked_until=until.isoformat(), retry_after=retry_after
        )
        answer: HttpResponse = JsonResponse(body, status=settings.AXES_HTTP_RESPONSE_CODE)
    else:
        page = format_html(
            "<!doctype html><title>OMS - locked out</title><h1>Locked out</h1><p>{}</p>",
            message,
        )
        answer = HttpResponse(page, status=settings.AXES_HTTP_RESPONSE_CODE)
    answer["Retry-After"] = str(retry_after)
    return answer


@receiver(user_locked_out)
def _log_locked_out(
    sender: Any, request: HttpRequest, username: str, ip_address: str, **_: Any
) -> None:
    until = _locked_until(request).isoformat()
    failures = getattr(request, "axes_failures_since_start", "?")
    log.warning(
        "event=login_locked_out user=%s ip=%s path=%s failures=%s until=%s",
        username,
        ip_address,
        request.path,
        failures,
        until,
    )
    if failures != settings.AXES_FAILURE_LIMIT:
        return  # an attempt while locked (axes signals each): logged, audited once
    audit.record(
        "operator",
        "login_locked_out",
        "axes",
        {"user": username, "ip": ip_address, "path": request.path, "until": until},
    )


@receiver(post_delete, sender=AccessAttempt)
def _log_released(sender: Any, instance: AccessAttempt, **_: Any) -> None:
    """An access attempt at the limit is a lock: deleting it (the admin, an
    ``axes_reset*`` command, or axes itself once the cool-off has passed) releases it."""
    if instance.failures_since_start < settings.AXES_FAILURE_LIMIT:
        return
    expired = instance.attempt_time + _cool_off() <= timezone.now()
    reason = "cool_off_passed" if expired else "reset"
    log.warning(
        "event=login_lock_released user=%s ip=%s failures=%s reason=%s",
        instance.username,
        instance.ip_address,
        instance.failures_since_start,
        reason,
    )
    audit.record(
        "operator",
        "login_lock_released",
        "axes",
        {"user": instance.username, "ip": instance.ip_address, "reason": reason},
    )
