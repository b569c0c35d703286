"""The audit trail in the admin: read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin

from audit.models import AuditRecord


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    list_display = ("stream", "seq", "at", "actor", "action", "hash")
    list_filter = ("stream", "action")
    search_fields = ("actor", "action")
    readonly_fields = [f.name for f in AuditRecord._meta.fields]

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False
