from django.contrib import admin

from venues.models import Venue


@admin.register(Venue)
class VenueAdmin(admin.ModelAdmin):
    list_display = ("name", "driver", "exchange_id", "base_url", "enabled", "updated_at")
    list_filter = ("driver", "enabled")
    search_fields = ("name", "exchange_id")
