"""Operator actions in the Django admin: every ``LogEntry`` the admin writes (an add, a
change, a deletion, by whom and what) is appended to the ``operator`` stream."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.models import LogEntry
from django.db.models.signals import post_save

STREAM = "operator"
_FLAGS = {1: "add", 2: "change", 3: "delete"}


def _logged(sender: Any, instance: LogEntry, created: bool, **kwargs: Any) -> None:
    if not created:
        return
    from audit import record

    record(
        STREAM,
        "admin." + _FLAGS.get(instance.action_flag, "other"),
        instance.user.get_username() if instance.user_id else "",
        {
            "model": instance.content_type.model if instance.content_type_id else "",
            "object_id": instance.object_id or "",
            "object": instance.object_repr,
            "change": instance.get_change_message(),
        },
    )


def connect() -> None:
    post_save.connect(_logged, sender=LogEntry, dispatch_uid="audit.operator_log")
