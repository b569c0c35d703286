"""Admin: reference data is editable; orders, events and fills are read-only history."""

from __future__ import annotations

from django.contrib import admin

from orders.models import Account, Fill, Instrument, Order, OrderEvent, Position


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
