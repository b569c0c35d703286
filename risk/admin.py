"""Admin for risk controls: limits, trading states (engage/release actions with a
required reason), the restricted list, and the read-only audit trail.

Every write goes through ``risk/services.py`` so it is checked and audited exactly like
the API. Only the ``risk`` and ``admin`` roles see these pages.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from omsweb.admin_decimals import PlainDecimals
from omsweb.roles import ADMIN, RISK, has_role
from orders.domain.errors import OmsError
from risk import services
from risk.models import (
    Restriction,
    RiskLimit,
    RiskLimitChange,
    Source,
    State,
    TradingState,
    TradingStateChange,
)


class RiskRoleMixin:
    """Visible and editable by the risk and admin roles only (not by Django model
    permissions, so a role is all a risk officer needs)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, RISK, ADMIN)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, RISK, ADMIN)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, RISK, ADMIN)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, RISK, ADMIN)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # deletions go through an action that asks why


class ReadOnlyMixin(RiskRoleMixin):
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _actor(request: HttpRequest) -> services.Actor:
    return services.Actor.of(request.user, Source.ADMIN)


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), max_length=1000)


def _with_reason(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: Any,
    *,
    title: str,
    action: str,
    apply: Any,
) -> HttpResponse | None:
    """An admin action that first asks for a reason (intermediate page), then applies
    ``apply(obj, reason)`` to each selected row."""
    if "apply" in request.POST:
        form = ReasonForm(request.POST)
        if form.is_valid():
            done = 0
            for obj in queryset:
                try:
                    apply(obj, form.cleaned_data["reason"])
                    done += 1
                except OmsError as exc:
                    modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            modeladmin.message_user(request, f"{title}: {done} done.", messages.SUCCESS)
            return None
    else:
        form = ReasonForm()
    return render(
        request,
        "admin/risk/reason_action.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "objects": list(queryset),
            "form": form,
            "action": action,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        },
    )


# --- Limits -----------------------------------------------------------------------------


class RiskLimitForm(forms.ModelForm):
    change_reason = forms.CharField(
        label="Reason for this change",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        max_length=1000,
        help_text="recorded in the audit trail with your name and the time",
    )

    class Meta:
        model = RiskLimit
        fields = ("account", "instrument", "kind", "value", "breach_action")

    def clean_value(self) -> Any:
        value = self.cleaned_data["value"]
        if value is not None and value < 0:
            raise ValidationError("a limit must not be negative")
        return value


@admin.register(RiskLimit)
class RiskLimitAdmin(PlainDecimals, RiskRoleMixin, admin.ModelAdmin):
    form = RiskLimitForm
    list_display = (
        "kind", "scope", "account", "instrument", "value", "breach_action",
        "updated_by_name", "updated_at", "reason",
    )  # fmt: skip
    list_filter = ("kind", "account", "instrument")
    list_select_related = ("account", "instrument")
    actions = ("delete_with_reason",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return ("account", "instrument", "kind") if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: RiskLimit, form: Any, change: bool) -> None:
        reason = form.cleaned_data["change_reason"]
        if change:
            saved = services.limit_update(
                actor=_actor(request),
                limit_id=obj.pk,
                reason=reason,
                value=obj.value,
                breach_action=obj.breach_action,
            )
        else:
            saved = services.limit_create(
                actor=_actor(request),
                kind=obj.kind,
                value=obj.value,
                reason=reason,
                account=obj.account,
                instrument=obj.instrument,
                breach_action=obj.breach_action,
            )
        obj.pk = saved.pk

    @admin.action(description="Delete selected limits (asks why)")
    def delete_with_reason(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        return _with_reason(
            self, request, queryset, title="Delete limits", action="delete_with_reason",
            apply=lambda obj, reason: services.limit_delete(
                actor=_actor(request), limit_id=obj.pk, reason=reason
            ),
        )  # fmt: skip


@admin.register(RiskLimitChange)
class RiskLimitChangeAdmin(PlainDecimals, ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "changed_at", "changed_by_name", "source", "action", "kind", "scope",
        "account_code", "symbol", "old_value", "new_value", "reason",
    )  # fmt: skip
    list_filter = ("action", "kind", "source")
    search_fields = ("reason", "changed_by_name", "account_code", "symbol")
    date_hierarchy = "changed_at"


# --- Trading states ---------------------------------------------------------------------


class TradingStateForm(forms.ModelForm):
    change_reason = forms.CharField(
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        max_length=1000,
        help_text="required; recorded with your name and the time",
    )

    class Meta:
        model = TradingState
        fields = ("scope", "venue", "account", "instrument", "state")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.instance.pk is None:
            try:
                services.validate_scope(
                    data.get("scope", ""),
                    venue=data.get("venue"),
                    account=data.get("account"),
                    instrument=data.get("instrument"),
                )
            except services.RiskValidationError as exc:
                raise ValidationError(exc.message) from None
        return data


def _set_state(request: HttpRequest, obj: TradingState, state: str, reason: str) -> None:
    services.trading_state_set(
        actor=_actor(request),
        scope=obj.scope,
        state=state,
        reason=reason,
        venue=obj.venue,
        account=obj.account,
        instrument=obj.instrument,
    )


@admin.register(TradingState)
class TradingStateAdmin(RiskRoleMixin, admin.ModelAdmin):
    form = TradingStateForm
    list_display = (
        "__str__", "scope", "state", "reason", "changed_by_name", "changed_by_role", "source",
        "changed_at",
    )  # fmt: skip
    list_filter = ("state", "scope")
    list_select_related = ("venue", "account", "instrument")
    actions = ("engage_halted", "engage_reducing", "release")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        if obj is not None:
            return ("scope", "venue", "account", "instrument")
        return ()

    def save_model(self, request: HttpRequest, obj: TradingState, form: Any, change: bool) -> None:
        result = services.trading_state_set(
            actor=_actor(request),
            scope=obj.scope,
            state=form.cleaned_data["state"],
            reason=form.cleaned_data["change_reason"],
            venue=obj.venue,
            account=obj.account,
            instrument=obj.instrument,
        )
        obj.pk = result.trading_state.pk

    @admin.action(description="Engage HALTED (cancels working orders in scope)")
    def engage_halted(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        return _with_reason(
            self, request, queryset, title="Engage HALTED", action="engage_halted",
            apply=lambda obj, reason: _set_state(request, obj, State.HALTED, reason),
        )  # fmt: skip

    @admin.action(description="Set REDUCING (only position-reducing orders)")
    def engage_reducing(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        return _with_reason(
            self, request, queryset, title="Set REDUCING", action="engage_reducing",
            apply=lambda obj, reason: _set_state(request, obj, State.REDUCING, reason),
        )  # fmt: skip

    @admin.action(description="Release (ACTIVE)")
    def release(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        return _with_reason(
            self, request, queryset, title="Release to ACTIVE", action="release",
            apply=lambda obj, reason: _set_state(request, obj, State.ACTIVE, reason),
        )  # fmt: skip


@admin.register(TradingStateChange)
class TradingStateChangeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "changed_at", "scope", "target", "symbol", "old_state", "new_state",
        "changed_by_name", "changed_by_role", "source", "reason",
    )  # fmt: skip
    list_filter = ("new_state", "scope", "source")
    search_fields = ("reason", "changed_by_name", "target", "symbol")
    date_hierarchy = "changed_at"
    readonly_fields = (
        "changed_at", "scope", "target", "symbol", "old_state", "new_state", "reason",
        "changed_by_name", "changed_by_role", "source", "detail",
    )  # fmt: skip

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # the detail page is viewable (sweep results); nothing can be saved
        return request.method in ("GET", "HEAD") and has_role(request.user, RISK, ADMIN)


# --- Restricted list --------------------------------------------------------------------


@admin.register(Restriction)
class RestrictionAdmin(RiskRoleMixin, admin.ModelAdmin):
    list_display = ("instrument", "account", "reason", "created_by", "created_at")
    list_filter = ("instrument", "account")
    fields = ("instrument", "account", "reason")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return has_role(request.user, RISK, ADMIN)  # lifting a restriction; admin logs it

    def save_model(self, request: HttpRequest, obj: Restriction, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
