from django.contrib import admin

from fixgw.models import FixSession


@admin.register(FixSession)
class FixSessionAdmin(admin.ModelAdmin):
    list_display = ("sender_comp_id", "target_comp_id", "user", "enabled")
    list_filter = ("enabled",)
    search_fields = ("sender_comp_id", "target_comp_id", "user__username")
