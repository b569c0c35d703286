"""Admin: reference data is editable; orders, events and fills are read-only history."""

from __future__ import annotations

from django.contrib import admin

from orders.models import (
    Account,
    Fill,
    Instrument,
    Order,
    OrderEvent,
    Position,
    ReconciliationRun,
    UnknownVenueOrder,
)


@admin.register(Account)
class AccountAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "created_at")
    search_fields = ("code", "name")
    filter_horizontal = ("members",)


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
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
    fields = ("sequence", "created_at", "kind", "source", "status", "late", "payload")
    readonly_fields = fields


class FillInline(ReadOnlyMixin, admin.TabularInline):
    model = Fill
    fk_name = "order"
    extra = 0
    fields = ("venue_trade_id", "executed_at", "quantity", "price", "fee", "fee_currency", "late")
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(ReadOnlyMixin, admin.ModelAdmin):
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
        "status",
        "venue",
        "created_at",
    )
    list_filter = ("status", "account", "venue", "instrument", "side", "type")
    search_fields = ("client_order_id", "venue_order_id", "venue_client_order_id")
    date_hierarchy = "created_at"
    list_select_related = ("account", "instrument", "venue")
    inlines = (OrderEventInline, FillInline)

    def get_readonly_fields(self, request, obj=None):  # noqa: ANN001
        return [f.name for f in Order._meta.fields]

    def has_change_permission(self, request, obj=None):  # noqa: ANN001
        # viewing is allowed (read-only detail page); nothing can be saved
        return request.method in ("GET", "HEAD") and request.user.is_staff


@admin.register(Fill)
class FillAdmin(ReadOnlyMixin, admin.ModelAdmin):
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
    list_filter = ("venue", "account", "instrument", "side", "late")
    search_fields = ("venue_trade_id", "order__client_order_id")
    list_select_related = ("order", "account", "instrument", "venue")


@admin.register(Position)
class PositionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "account",
        "instrument",
        "quantity",
        "average_price",
        "realized_pnl",
        "fees",
        "mark_price",
        "updated_at",
    )
    list_filter = ("account", "instrument")
    list_select_related = ("account", "instrument")


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
class UnknownVenueOrderAdmin(admin.ModelAdmin):
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
        from orders.reconcile import unknown_cancel
        from orders.services import OrderError

        done = 0
        for unknown in queryset.filter(state=UnknownVenueOrder.State.OPEN):
            try:
                unknown_cancel(unknown_id=unknown.pk, user=request.user.username)
                done += 1
            except OrderError as exc:
                self.message_user(request, f"{unknown}: {exc.message}", level="error")
        self.message_user(request, f"{done} order(s) canceled at the venue")
