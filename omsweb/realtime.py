"""The one place that sends to the channel layer.

Services call ``publish_on_commit`` inside their transaction; the message goes out only
after the commit, to the account's group (and the all-accounts group for risk/admin).
Events are namespaced: ``order.updated``, ``fill.created``, ``position.updated``,
``risk.state``, ``venue.status``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)

ALL_ACCOUNTS_GROUP = "blotter.all"


def account_group(account_id: int) -> str:
    return f"blotter.account.{account_id}"


def send(event_type: str, *, account_id: int | None, **data: Any) -> None:
    """Send now (call only after commit)."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "oms.event", "event": event_type, "data": data}
    try:
        groups = [ALL_ACCOUNTS_GROUP]
        if account_id is not None:
            groups.append(account_group(account_id))
        for group in groups:
            async_to_sync(layer.group_send)(group, {**message, "account_id": account_id})
    except Exception:  # a live push must never break the order path; snapshots catch up
        log.exception("realtime push %s failed", event_type)


def publish_on_commit(event_type: str, *, account_id: int | None, **data: Any) -> None:
    if not _ENABLED:
        return
    transaction.on_commit(lambda: send(event_type, account_id=account_id, **data))


# Live pushes are wired in by the blotter issue; until a consumer exists there is no
# one to send to, so publishing is off and costs nothing on the order path.
_ENABLED = False
