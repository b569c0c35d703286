"""Admin: reference data is editable; orders, events and fills are read-only history.

The order page reads as a timeline: the order's fields grouped, then every event in
sequence (payloads pretty-printed), then its fills. "View site" opens the blotter.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from omsweb.admin_decimals import PlainDecimals
from orders.models import (
    Account,
    Fill,
    Instrument,
    Order,
    OrderEvent,
    Position,
    ReconciliationRun,
    ReconFinding,
    UnknownVenueOrder,
)
from routing.models import RouteDecision

admin.site.site_header = "OMS administration"
admin.site.site_title = "OMS admin"
admin.site.index_title = "Accounts, instruments, venues, limits and order history"
admin.site.site_url = "/"  # "View site": the blotter

STATUS_COLOURS = {
    "FILLED": "#1a7f37",
    "PARTIALLY_FILLED": "#2da44e",
    "ACCEPTED": "#0969da",
    "CANCELED": "#6e7781",
    "EXPIRED": "#6e7781",
    "DENIED": "#cf222e",
    "REJECTED": "#cf222e",
}


def status_badge(status: str):  # noqa: ANN201 - SafeString
    colour = STATUS_COLOURS.get(status, "#9a6700")
    return format_html(
        '<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px;'
        'font-size:11px;font-weight:600">{}</span>',
        colour,
        status,
    )


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "stp_group", "created_at")
    list_filter = ("stp_group",)
    search_fields = ("code", "name", "stp_group")
    filter_horizontal = ("members",)


@admin.register(Instrument)
class InstrumentAdmin(PlainDecimals, admin.ModelAdmin):
    list_display = ("symbol", "base", "quote", "tick_size", "lot_size", "min_notional", "enabled")
    list_filter = ("enabled", "quote")
    search_fields = ("symbol", "base")


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None):  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None):  # noqa: ANN001
        return False


class OrderEventInline(ReadOnlyMixin, admin.TabularInline):
    model = OrderEvent
    extra = 0
    ordering = ("sequence",)
    verbose_name_plural = "events (timeline)"
    fields = ("sequence", "created_at", "kind", "source", "status_after", "late", "details")
    readonly_fields = fields

    @admin.display(description="status")
    def status_after(self, event: OrderEvent):  # noqa: ANN201
        return status_badge(event.status)

    @admin.display(description="payload")
    def details(self, event: OrderEvent):  # noqa: ANN201
        if not event.payload:
            return ""
        text = json.dumps(event.payload, indent=1, sort_keys=True, default=str)
        return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', text)


class FillInline(PlainDecimals, ReadOnlyMixin, admin.TabularInline):
    model = Fill
    fk_name = "order"
    extra = 0
    fields = (
        "venue_trade_id",
        "executed_at",
        "quantity",
        "price",
        "fee",
        "fee_currency",
        "is_maker",
        "late",
    )
    readonly_fields = fields


class ChildInline(PlainDecimals, ReadOnlyMixin, admin.TabularInline):
    """A parent's child orders (the router's), each linking to its own page."""

    model = Order
    fk_name = "parent"
    extra = 0
    ordering = ("id",)
    verbose_name_plural = "child orders (routed)"
    fields = ("child", "venue", "quantity", "price", "time_in_force", "filled_quantity",
              "average_price", "status", "reason")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="order")
    def child(self, order: Order):  # noqa: ANN201
        from django.urls import reverse

        url = reverse("admin:orders_order_change", args=[order.pk])
        return format_html('<a href="{}">{}</a>', url, order.client_order_id)


class RouteDecisionInline(ReadOnlyMixin, admin.TabularInline):
    """A parent's route decisions: per round, the children and every venue's reason."""

    model = RouteDecision
    fk_name = "parent"
    extra = 0
    ordering = ("round",)
    verbose_name_plural = "route decisions"
    fields = ("round", "created_at", "kind", "quantity", "outcome", "venue_reasons")
    readonly_fields = fields

    @admin.display(description="venues")
    def venue_reasons(self, decision: RouteDecision):  # noqa: ANN201
        rows = [
            f"{v['venue']}: {v['quantity']} @ {v['price']} (fee-adj {v['fee_adjusted_price']}, "
            f"age {v['age_ms']} ms, score {v['score']}) - {v['reason']}"
            for v in decision.venues
        ]
        return format_html('<pre style="margin:0;white-space:pre-wrap">{}</pre>', "\n".join(rows))


@admin.register(Order)
class OrderAdmin(PlainDecimals, ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "client_order_id",
        "account",
        "instrument",
        "side",
        "type",
        "quantity",
        "price",
        "filled_quantity",
        "average_price",
        "status_colour",
        "venue",
        "created_at",
    )
    list_filter = ("status", "account", "venue", "instrument", "side", "type", "time_in_force")
    search_fields = (
        "=id",
        "client_order_id",
        "venue_order_id",
        "venue_client_order_id",
        "reason",
    )
    date_hierarchy = "created_at"
    list_select_related = ("account", "instrument", "venue")
    list_per_page = 50
    show_full_result_count = False  # no COUNT(*) over the whole order history
    inlines = (OrderEventInline, FillInline, ChildInline, RouteDecisionInline)
    readonly_fields = [f.name for f in Order._meta.fields]
    fieldsets = (
        (
            "Order",
            {
                "fields": (
                    ("client_order_id", "parent"),
                    ("account", "instrument"),
                    ("side", "type", "time_in_force"),
                    ("quantity", "price"),
                    ("status", "prior_status"),
                    "reason",
                )
            },
        ),
        (
            "Execution",
            {
                "fields": (
                    ("filled_quantity", "average_price", "filled_notional"),
                    ("venue", "venue_order_id", "venue_client_order_id"),
                    ("pending_quantity", "pending_price", "amend_count"),
                )
            },
        ),
        (
            "Audit",
            {
                "classes": ("collapse",),
                "fields": (
                    ("created_by", "created_at", "updated_at"),
                    ("event_sequence", "request_fingerprint"),
                ),
            },
        ),
    )

    @admin.display(description="status", ordering="status")
    def status_colour(self, order: Order):  # noqa: ANN201
        return status_badge(order.status)

    def has_change_permission(self, request, obj=None):  # noqa: ANN001
        # viewing is allowed (read-only detail page); nothing can be saved
        return request.method in ("GET", "HEAD") and request.user.is_staff


@admin.register(Fill)
class FillAdmin(PlainDecimals, ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "id",
        "order",
        "account",
        "instrument",
        "venue",
        "venue_trade_id",
        "side",
        "quantity",
        "price",
        "fee",
        "late",
        "executed_at",
    )
    list_filter = ("venue", "account", "instrument", "side", "is_maker", "late")
    search_fields = ("venue_trade_id", "order__client_order_id", "order__venue_order_id")
    list_select_related = ("order", "account", "instrument", "venue")
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False


@admin.register(Position)
class PositionAdmin(PlainDecimals, ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "account",
        "instrument",
        "quantity",
        "average_price",
        "realized_pnl",
        "unrealized",
        "fees",
        "mark_price",
        "updated_at",
    )
    list_filter = ("account", "instrument")
    search_fields = ("account__code", "instrument__symbol")
    list_select_related = ("account", "instrument")

    @admin.display(description="unrealized P&L")
    def unrealized(self, position: Position):  # noqa: ANN201
        value = position.unrealized_pnl
        return "" if value is None else value.quantize(value.__class__("0.01"))


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "venue", "trigger", "status", "started_at", "finished_at", "summary")
    list_filter = ("venue", "trigger", "status")
    readonly_fields = ("venue", "trigger", "status", "started_at", "finished_at", "found",
                       "fixed", "error")  # fmt: skip

    @admin.display(description="found / fixed")
    def summary(self, run: ReconciliationRun) -> str:
        f, x = run.found or {}, run.fixed or {}
        return (
            f"open@venue {f.get('open_at_venue', 0)}, missing {len(f.get('missing_at_venue', []))}"
            f", unknown {len(f.get('unknown_at_oms', []))} / fills {x.get('missed_fills', 0)}"
            f", settled {len(x.get('settled', []))}"
        )

    def has_change_permission(self, request, obj=None):  # noqa: ANN001
        return request.method in ("GET", "HEAD") and request.user.is_staff


@admin.register(UnknownVenueOrder)
class UnknownVenueOrderAdmin(PlainDecimals, admin.ModelAdmin):
    list_display = ("id", "venue", "venue_order_id", "client_order_id", "symbol", "side",
                    "quantity", "price", "filled_quantity", "state", "last_seen")  # fmt: skip
    list_filter = ("venue", "state", "symbol")
    search_fields = ("venue_order_id", "client_order_id")
    actions = ("cancel_at_venue",)
    readonly_fields = [f.name for f in UnknownVenueOrder._meta.fields]

    def has_add_permission(self, request, obj=None):  # noqa: ANN001
        return False

    @admin.action(description="Cancel selected orders at the venue")
    def cancel_at_venue(self, request, queryset):  # noqa: ANN001
        from orders.domain.errors import OmsError
        from orders.reconcile import unknown_cancel

        done = 0
        for unknown in queryset.filter(state=UnknownVenueOrder.State.OPEN):
            try:
                unknown_cancel(unknown_id=unknown.pk, user=request.user.username)
                done += 1
            except OmsError as exc:
                self.message_user(request, f"{unknown}: {exc.message}", level="error")
        self.message_user(request, f"{done} order(s) canceled at the venue")


SEVERITY_COLOURS = {"INFO": "#6e7781", "WARNING": "#9a6700", "CRITICAL": "#cf222e"}


class OpenFilter(admin.SimpleListFilter):
    title = "open"
    parameter_name = "open"

    def lookups(self, request, model_admin):  # noqa: ANN001, ANN201
        return (("yes", "open"), ("no", "resolved"))

    def queryset(self, request, queryset):  # noqa: ANN001, ANN201
        if self.value() in ("yes", "no"):
            return queryset.filter(resolved_at__isnull=self.value() == "yes")
        return queryset


@admin.register(ReconFinding)
class ReconFindingAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every difference reconciliation found; operators resolve them here, and confirm
    a mass-missing alert (which closes the vanished orders through the engine)."""

    list_display = ("id", "created_at", "venue", "severity_badge", "kind", "order", "message",
                    "is_open", "resolved_by")  # fmt: skip
    list_filter = (OpenFilter, "severity", "kind", "venue")
    search_fields = ("key", "message", "order__client_order_id")
    list_select_related = ("venue", "order")
    readonly_fields = [f.name for f in ReconFinding._meta.fields]
    actions = ("resolve_findings", "confirm_mass_missing")
    date_hierarchy = "created_at"

    @admin.display(description="severity", ordering="severity")
    def severity_badge(self, finding: ReconFinding):  # noqa: ANN201
        return format_html(
            '<span style="color:#fff;background:{};padding:1px 6px;border-radius:3px;'
            'font-size:11px;font-weight:600">{}</span>',
            SEVERITY_COLOURS.get(finding.severity, "#6e7781"),
            finding.severity,
        )

    @admin.display(boolean=True, description="open")
    def is_open(self, finding: ReconFinding) -> bool:
        return finding.is_open

    def _may_act(self, request) -> bool:  # noqa: ANN001
        from omsweb.roles import ADMIN, RISK, has_role

        if has_role(request.user, RISK, ADMIN):
            return True
        self.message_user(request, "only the risk and admin roles act on findings", "error")
        return False

    @admin.action(description="Mark selected findings resolved")
    def resolve_findings(self, request, queryset):  # noqa: ANN001
        from orders.domain.errors import OmsError
        from orders.reconcile import resolve_finding

        if not self._may_act(request):
            return
        done = 0
        for finding in queryset.filter(resolved_at__isnull=True):
            try:
                resolve_finding(finding_id=finding.pk, user=request.user.get_username(),
                                resolution="resolved in the admin")  # fmt: skip
                done += 1
            except OmsError as exc:
                self.message_user(request, f"{finding}: {exc.message}", level="error")
        self.message_user(request, f"{done} finding(s) resolved")

    @admin.action(description="Confirm mass-missing alert: close the vanished orders")
    def confirm_mass_missing(self, request, queryset):  # noqa: ANN001
        from orders.domain.errors import OmsError
        from orders.reconcile import confirm_missing

        if not self._may_act(request):
            return
        for finding in queryset.filter(kind=ReconFinding.Kind.MASS_MISSING,
                                       resolved_at__isnull=True):  # fmt: skip
            try:
                done = confirm_missing(finding_id=finding.pk, user=request.user.get_username())
            except OmsError as exc:
                self.message_user(request, f"{finding}: {exc.message}", level="error")
                continue
            self.message_user(request, f"{finding.venue}: {done.finding.resolution}")
