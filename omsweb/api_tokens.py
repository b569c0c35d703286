"""API tokens: issued, rotated and revoked here, stored only as hashes.

A token is django-rest-knox's: ``oms_`` and 64 random hex digits, shown once when it is
issued; the database keeps its SHA-512 digest and its first 15 characters (the lookup
key, also what the admin and the log lines show). Clients send it as before,
``Authorization: Token <token>`` (``omsweb/token_auth.py`` checks it).

Tokens do not expire (``REST_KNOX["TOKEN_TTL"] = None``): they belong to trading
programs; a user rotates or revokes theirs (``POST /api/v1/auth/token/rotate/``,
``DELETE /api/v1/auth/token/``), an admin revokes any in the admin. Each rotation and
revocation is logged at WARNING with a stable event name
(``event=api_token_rotated|api_token_revoked``).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from knox.models import AuthToken

log = logging.getLogger(__name__)


def issue(*, user: Any, source: str) -> str:
    """A new token for ``user``; the only time its clear text exists on our side."""
    instance, token = AuthToken.objects.create(user=user, expiry=None)
    log.info(
        "event=api_token_issued user=%s key_id=%s source=%s",
        user.get_username(),
        instance.token_key,
        source,
    )
    return token


@transaction.atomic
def rotate(*, token: AuthToken, actor: str) -> str | None:
    """Replace ``token`` by a new one for the same user: the old one stops working.
    None when ``token`` is gone already (rotated or revoked by a concurrent request: its
    delete waits for that one's row lock, then finds nothing)."""
    deleted, _ = AuthToken.objects.filter(digest=token.digest).delete()
    if not deleted:
        return None
    user = token.user
    new_instance, new_token = AuthToken.objects.create(user=user, expiry=None)
    log.warning(
        "event=api_token_rotated user=%s key_id=%s new_key_id=%s actor=%s",
        user.get_username(),
        token.token_key,
        new_instance.token_key,
        actor,
    )
    return new_token


def revoke(*, token: AuthToken, actor: str) -> None:
    """Delete ``token``: requests with it are refused from now on."""
    AuthToken.objects.filter(digest=token.digest).delete()
    log.warning(
        "event=api_token_revoked user=%s key_id=%s actor=%s",
        token.user.get_username(),
        token.token_key,
        actor,
    )
