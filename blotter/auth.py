"""WebSocket authentication for programmatic clients: an API token, given as
``Authorization: Token <key>`` or ``?token=<key>``, when there is no session.

Sits inside ``AuthMiddlewareStack`` (which resolves the session user first) and marks
how the connection was authenticated in ``scope["oms_auth"]`` (``session`` | ``token``),
so the consumer checks the Origin of cookie-authenticated browsers only.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware


def _token_from(scope: dict[str, Any]) -> str | None:
    header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin1")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "token" and key.strip():
        return key.strip()
    query = parse_qs(scope.get("query_string", b"").decode("latin1"))
    values = query.get("token")
    return values[0] if values else None


@database_sync_to_async
def _user_for(key: str) -> Any:
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


class TokenAuthMiddleware(BaseMiddleware):
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        user = scope.get("user")
        if user is not None and user.is_authenticated:
            scope = dict(scope, oms_auth="session")
        else:
            key = _token_from(scope)
            token_user = await _user_for(key) if key else None
            if token_user is not None:
                scope = dict(scope, user=token_user, oms_auth="token")
        return await super().__call__(scope, receive, send)
