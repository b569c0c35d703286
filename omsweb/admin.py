"""Admin for API tokens: list them by lookup key (never a secret: only hashes are
stored), revoke them (delete), rotate them (the new tokens are shown once, on the
action's own page, stored nowhere in clear). Tokens are first issued by logging in at
``/api/v1/auth/token/``."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from knox.models import AuthToken

from omsweb import api_tokens

admin.site.unregister(AuthToken)


@admin.register(AuthToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("token_key", "user", "created", "expiry")
    list_select_related = ("user",)
    search_fields = ("token_key", "user__username")
    fields = ("token_key", "user", "created", "expiry")
    readonly_fields = fields
    actions = ["delete_selected", "rotate_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: AuthToken) -> None:
        api_tokens.revoke(token=obj, actor=request.user.get_username())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[AuthToken]) -> None:
        for token in queryset.select_related("user"):
            api_tokens.revoke(token=token, actor=request.user.get_username())

    @admin.action(description="Rotate selected tokens (the new ones are shown once)")
    def rotate_selected(self, request: HttpRequest, queryset: QuerySet[AuthToken]) -> HttpResponse:
        actor = request.user.get_username()
        rotated = [
            (token.user.get_username(), new)
            for token in queryset.select_related("user")
            if (new := api_tokens.rotate(token=token, actor=actor)) is not None
        ]
        rows = format_html_join("", "<tr><td>{}</td><td><code>{}</code></td></tr>", rotated)
        page = format_html(
            "<!doctype html><title>New API tokens</title><h1>New API tokens</h1>"
            "<p>Shown this once: only their hashes are kept. The old tokens no longer work."
            "</p><table><tr><th>user</th><th>token</th></tr>{}</table>"
            '<p><a href=".">Back to the tokens</a></p>',
            rows,
        )
        response = HttpResponse(page)
        add_never_cache_headers(response)
        return response
