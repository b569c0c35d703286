"""Venue configuration changes in the audit trail (stream ``venues``): who changed
which of a venue's settings (base URL, credential names, driver, ...) from what to what.
Every path that saves a venue records it (the admin form and actions, the API), in the
transaction of the save."""

from __future__ import annotations

from typing import Any

import audit
from venues.models import Venue

STREAM = "venues"
_UNAUDITED = {"id", "created_at", "updated_at"}


def settings_of(venue: Venue | None) -> dict[str, Any]:
    """The venue's configuration (every column but its id and timestamps); empty for a
    venue not saved yet."""
    if venue is None or venue.pk is None:
        return {}
    return {
        f.name: f.value_from_object(venue)
        for f in Venue._meta.concrete_fields
        if f.name not in _UNAUDITED
    }


def record_change(before: dict[str, Any], venue: Venue, *, actor: str, via: str) -> None:
    """Append what changed between ``before`` (``settings_of`` the venue before the
    save; empty: created) and the saved ``venue``; nothing when nothing changed."""
    after = settings_of(venue)
    changes = {
        name: [before.get(name), value]
        for name, value in after.items()
        if not before or before.get(name) != value
    }
    if changes:
        audit.record(
            STREAM,
            "venue.change" if before else "venue.create",
            actor,
            {"venue": venue.name, "id": venue.pk, "via": via, "changes": changes},
        )


def record_delete(venue: Venue, *, actor: str, via: str) -> None:
    """Append a venue's removal, with the settings it had."""
    audit.record(
        STREAM,
        "venue.delete",
        actor,
        {"venue": venue.name, "id": venue.pk, "via": via, "settings": settings_of(venue)},
    )
