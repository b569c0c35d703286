"""DRF's token authentication with its lookup as one prebuilt statement.

Every API request authenticates; DRF's ``Token.objects.select_related("user").get()``
costs about 0.5 ms, nearly all of it the ORM compiling the query (the same read as
prebuilt SQL: 0.09 ms, on the 2-core machine). Same answers, same errors: the token
and its user are read from the database on every request, so a deleted token or a
deactivated user is refused at once.
"""

from __future__ import annotations

import functools
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from omsweb import sqlrows as sr


@functools.cache
def _sql(token_model: Any) -> str:
    user_model = get_user_model()
    token, user = sr.part(token_model), sr.part(user_model)
    return (
        f"SELECT {token.select('t')}, {user.select('u')} FROM {sr.table(token_model)} t "
        f"JOIN {sr.table(user_model)} u ON u.{sr.pk(user_model)} = t.{sr.column(token_model, 'user')} "
        f"WHERE t.{sr.pk(token_model)} = %s"
    )


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, as DRF's, in one prebuilt query."""

    def authenticate_credentials(self, key: str) -> tuple[Any, Any]:
        model = self.get_model()
        with connection.cursor() as cursor:
            cursor.execute(_sql(model), [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        token, user = sr.hydrate((sr.part(model), sr.part(get_user_model())), row)
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        return (user, token)
