"""WebSocket authentication for programmatic clients: an API token, when there is no
session, given as

- the header ``Authorization: Token <token>`` (clients that can set headers), or
- the subprotocol ``oms.token.<token>``, offered next to ``oms.v1`` (browsers' WebSocket
  API cannot set headers: ``new WebSocket(url, ["oms.v1", "oms.token." + token])``);
  the server answers with ``oms.v1``, never echoing the token.

A token in the query string (``?token=``) is not accepted: URLs end up in access logs
and browser history.

Sits inside ``AuthMiddlewareStack`` (which resolves the session user first) and marks
how the connection was authenticated in ``scope["oms_auth"]`` (``session`` | ``token``),
so the consumer checks the Origin of cookie-authenticated browsers only.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

SUBPROTOCOL = "oms.v1"
TOKEN_SUBPROTOCOL_PREFIX = "oms.token."


def _token_from(scope: dict[str, Any]) -> str | None:
    header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin1")
    scheme, _, key = header.partition(" ")
    if scheme.lower() == "token" and key.strip():
        return key.strip()
    for offered in scope.get("subprotocols") or ():
        if offered.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            return offered[len(TOKEN_SUBPROTOCOL_PREFIX) :]
    return None


@database_sync_to_async
def _user_for(key: str) -> Any:
    from omsweb.token_auth import find

    token = find(key)
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
