"""Venue admin: the rows (admins edit them without a deploy) with what Redis knows now:
circuit breaker, rate-limit use, book freshness."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from venues.changes import record_delete
from venues.models import Venue
from venues.services import venue_save


def _live_state(venue: Venue) -> dict[str, Any]:
    from omsweb.redis_client import client
    from venues.status import venue_states

    try:
        row = {"name": venue.name, "driver": venue.driver, "enabled": venue.enabled,
               "rate_limits": venue.rate_limits}  # fmt: skip
        return venue_states(client(), [row], [])[0]
    except Exception:  # Redis down: the admin still works, the state shows as unknown
        return {}


@admin.register(Venue)
class VenueAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "driver",
        "exchange_id",
        "base_url",
        "enabled",
        "state",
        "breaker",
        "rate_limit_use",
        "updated_at",
    )
    list_filter = ("driver", "enabled")
    search_fields = ("name", "exchange_id", "base_url")
    readonly_fields = (
        "disabled_reason", "state", "taker_fee", "breaker", "rate_limit_use", "created_at",
        "updated_at",
    )  # fmt: skip
    fieldsets = (
        (None, {"fields": ("name", "driver", "exchange_id", "base_url", "enabled",
                           "disabled_reason")}),
        ("FIX (fix venues: where its FIX session connects, and the CompIDs)",
         {"fields": ("fix_host", "fix_port", "sender_comp_id", "target_comp_id")}),
        ("Credentials: OMS_VENUE_<NAME>_KEY / _SECRET (names, never the secrets), or empty",
         {"fields": ("api_key_env", "secret_env")}),
        ("Rate limits", {"fields": ("rate_limits",)}),
        ("Fees (kept by `oms marketdata`)", {"fields": ("taker_fee",)}),
        ("Now", {"fields": ("state", "breaker", "rate_limit_use", "created_at", "updated_at")}),
    )  # fmt: skip
    actions = ("enable", "disable")

    @admin.display(description="state")
    def state(self, venue: Venue) -> str:
        """up / down / stale / misconfigured (with why) / disabled (with why)."""
        live = _live_state(venue)
        status = live.get("status") or "?"
        why = live.get("detail") if status == "misconfigured" else venue.disabled_reason
        return f"{status}: {why}" if why else status

    @admin.display(description="breaker")
    def breaker(self, venue: Venue) -> str:
        state = _live_state(venue)
        if not state.get("breaker"):
            return "?"
        failures = state.get("breaker_failures") or 0
        return state["breaker"] + (f" ({failures} failures)" if failures else "")

    @admin.display(description="rate-limit use")
    def rate_limit_use(self, venue: Venue) -> str:
        limit = _live_state(venue).get("rate_limit") or {}
        usage = limit.get("usage") or {}
        text = ", ".join(f"{pool} {share:.0%}" for pool, share in sorted(usage.items()))
        if limit.get("paused_for_s"):
            text += f" (paused {limit['paused_for_s']} s)"
        return text or "?"

    def save_model(self, request: HttpRequest, obj: Venue, form: Any, change: bool) -> None:
        venue_save(venue=obj, actor=request.user.get_username(), via="admin")

    def delete_model(self, request: HttpRequest, obj: Venue) -> None:
        with transaction.atomic():
            record_delete(obj, actor=request.user.get_username(), via="admin")
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Venue]) -> None:
        with transaction.atomic():
            for venue in queryset:
                record_delete(venue, actor=request.user.get_username(), via="admin")
            super().delete_queryset(request, queryset)

    def _set_enabled(self, request: HttpRequest, queryset: QuerySet[Venue], enabled: bool) -> int:
        count = 0
        with transaction.atomic():
            for venue in queryset.select_for_update().exclude(enabled=enabled):
                venue.enabled = enabled
                if enabled:  # missing credentials: it stays disabled, with the reason
                    venue.disable_without_credentials()
                venue_save(venue=venue, actor=request.user.get_username(), via="admin")
                if venue.enabled != enabled:
                    why = f"{venue.name} stays disabled: {venue.disabled_reason}"
                    self.message_user(request, why, messages.ERROR)
                    continue
                count += 1
        return count

    @admin.action(description="Enable the selected venues")
    def enable(self, request: HttpRequest, queryset: QuerySet[Venue]) -> None:
        """Each venue is checked as the form checks it (``venues/validation.py``): one with
        a bad field, or missing credentials, stays disabled, with the reason."""
        from venues.validation import field_problems

        bad = {v.name: next(iter(p.values())) for v in queryset if (p := field_problems(v))}
        for name, why in bad.items():
            self.message_user(request, f"{name} stays disabled: {why}", messages.ERROR)
        count = self._set_enabled(request, queryset.exclude(name__in=bad), True)
        self.message_user(request, f"{count} venue(s) enabled", messages.SUCCESS)

    @admin.action(description="Disable the selected venues (no new orders are routed there)")
    def disable(self, request: HttpRequest, queryset: QuerySet[Venue]) -> None:
        count = self._set_enabled(request, queryset, False)
        self.message_user(request, f"{count} venue(s) disabled", messages.WARNING)
