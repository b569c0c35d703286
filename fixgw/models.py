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


class FixRequest(models.Model):
    """A cancel or replace a FIX client asked for, by its own ClOrdID (FIX gives every
    request an id of its own; the order keeps its client order id). Execution reports
    about the request carry its ClOrdID and OrigClOrdID; after a replace the order is
    known by the replace's ClOrdID. ``answered_seq``: the order's event sequence of the
    change that answered the request (canceled, replaced, refused; 0: refused at once, by
    our risk); reports of changes before it (``after_seq``: the sequence when it came)
    still use the ids in force then."""

    class Kind(models.TextChoices):
        CANCEL = "cancel"
        REPLACE = "replace"

    account = models.ForeignKey("orders.Account", on_delete=models.CASCADE, related_name="+")
    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    cl_ord_id = models.CharField(max_length=64)
    orig_cl_ord_id = models.CharField(max_length=64)
    after_seq = models.PositiveIntegerField(help_text="the order's event sequence when asked")
    answered_seq = models.PositiveIntegerField(null=True, blank=True)
    replaced = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "cl_ord_id"], name="fix_request_cl_ord_id_per_account"
            )
        ]
        indexes = [models.Index(fields=["order", "kind"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.cl_ord_id} ({self.orig_cl_ord_id})"
