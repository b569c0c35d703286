"""Venue rows written by people (the admin, the API): one function, audited.

Where a venue's orders go and which credentials they carry is security configuration:
an admin who points a venue's base URL at a listener of their own receives what the
OMS sends there. So every save from the admin or the API goes through ``venue_save``:
every change goes into the audit trail (``venues/changes.py``, in the save's
transaction), and a change to the name (it fixes the credential variables,
``venues/credentials.py``), the base URL or the credential variable names is also
reported by ``venue_config_changed``: a WARNING ``event=venue_config_changed`` with who
and what, old -> new.
"""

from __future__ import annotations

import logging

from django.db import transaction

from venues.changes import record_change, settings_of
from venues.models import Venue

log = logging.getLogger(__name__)

AUDITED_FIELDS = (
    "name", "base_url", "api_key_env", "secret_env", "fix_host", "fix_port", "sender_comp_id",
    "target_comp_id",
)  # fmt: skip


def venue_save(*, venue: Venue, actor: str, via: str) -> Venue:
    """Save ``venue`` (new or changed) for ``actor`` (a user name) from ``via`` (admin,
    api), recording the change; the cached adapters of this process are rebuilt."""
    from venues.registry import reset_adapters

    with transaction.atomic():
        before = (
            Venue.objects.select_for_update().filter(pk=venue.pk).first()
            if venue.pk is not None
            else None
        )
        venue.save()
        record_change(settings_of(before), venue, actor=actor, via=via)
        changes = {}
        for field in AUDITED_FIELDS:
            old = getattr(before, field) if before is not None else ""
            new = getattr(venue, field)
            if old != new and (old or new):  # "" and None (no port) are both unset
                changes[field] = (old, new)
        if changes:
            venue_config_changed(venue=venue, actor=actor, changes=changes, created=before is None)
    reset_adapters()  # this process; workers rebuild theirs when the key changes
    return venue


def venue_config_changed(
    *, venue: Venue, actor: str, changes: dict[str, tuple[str, str]], created: bool
) -> None:
    """Report a change of a venue's audited fields: ``changes`` is {field: (old, new)}."""
    what = " ".join(f"{field}={old!r}->{new!r}" for field, (old, new) in changes.items())
    log.warning(
        "event=venue_config_changed venue=%s id=%s by=%s action=%s %s",
        venue.name,
        venue.pk,
        actor,
        "created" if created else "changed",
        what,
    )
