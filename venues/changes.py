"""Venue configuration changes in the audit trail (stream ``venues``): who changed
which of a venue's settings (base URL, credential names, driver, ...) from what to what.
Every path that saves a venue records it (the admin form and actions, the API), in the
transaction of the save."""

from __future__ import annotations

from typing import Any

import audit
from audit.chain import jsonable
from audit.models import AuditRecord
from audit.verify import Break
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
            {"venue": venue.name, "id": venue.pk, "via": via, "changes": changes,
             "settings": after},
        )  # fmt: skip


def record_delete(venue: Venue, *, actor: str, via: str) -> None:
    """Append a venue's removal, with the settings it had."""
    audit.record(
        STREAM,
        "venue.delete",
        actor,
        {"venue": venue.name, "id": venue.pk, "via": via, "settings": settings_of(venue)},
    )


def verify_current() -> tuple[list[Break], int]:
    """Every venue row must be as its last audited change left it (a base URL changed by
    SQL is not in the trail). The breaks, and how many venues were never audited
    (created before the trail, or by the set-up)."""
    last: dict[int, dict[str, Any] | None] = {}
    records = AuditRecord.objects.filter(stream=STREAM).order_by("seq")
    for action, payload in records.values_list("action", "payload").iterator():
        if action == "venue.delete":
            last[payload["id"]] = None
        elif "settings" in payload:
            last[payload["id"]] = payload["settings"]
    breaks, unaudited = [], 0
    for venue in Venue.objects.order_by("pk"):
        if venue.pk not in last:
            unaudited += 1
            continue
        want, have = last.pop(venue.pk), jsonable(settings_of(venue))
        where = f"venue {venue.name} (id {venue.pk})"
        if want is None:
            breaks.append(
                Break(f"audit:{STREAM}", where, "inserted: its last audited change deleted it")
            )
            continue
        differ = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
        if differ:
            breaks.append(
                Break(f"audit:{STREAM}", where,
                      f"altered outside the audit trail: {', '.join(differ)} not as last audited")
            )  # fmt: skip
    for venue_id, settings in last.items():
        if settings is not None:
            breaks.append(
                Break(f"audit:{STREAM}", f"venue {settings.get('name')} (id {venue_id})",
                      "removed outside the audit trail")
            )  # fmt: skip
    return breaks, unaudited
