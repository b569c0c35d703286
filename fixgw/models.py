"""FIX sessions of the order-entry gateway: who may log on, acting for which user."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class FixSession(models.Model):
    """One client session, in the client's terms: the client sends with SenderCompID
    ``sender_comp_id`` to TargetCompID ``target_comp_id`` (the gateway's CompID), and
    acts for ``user`` (its Logon carries that user's name and API token). The gateway
    reads the rows when it starts; a session added later is served after a restart."""

    sender_comp_id = models.CharField(max_length=64)
    target_comp_id = models.CharField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="fix_sessions"
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sender_comp_id", "target_comp_id"], name="fix_session_comp_ids_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.sender_comp_id}->{self.target_comp_id} ({self.user})"
