"""The audit trail's own records: risk, venue and operator changes, and the anchors of
the order-event chains, each in a hash-chained stream (``audit/chain.py``)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from audit.chain import canonical


class AuditStream(models.Model):
    """The head of a stream: its last sequence number and hash. Locked (``FOR UPDATE``)
    by every append, so a stream's records are numbered and chained in order."""

    name = models.CharField(max_length=64, primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    head = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.name}#{self.seq}"


class AuditRecord(models.Model):
    """One audited change: who (``actor``) did what (``action``, ``payload``) and when.
    Append-only; ``hash`` covers the fields and ``prev_hash`` (the stream's record
    before it)."""

    stream = models.CharField(max_length=64)
    seq = models.PositiveBigIntegerField()
    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["stream", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["stream", "seq"], name="audit_record_stream_seq")
        ]

    def __str__(self) -> str:
        return f"{self.stream}#{self.seq} {self.action} by {self.actor}"

    def body(self) -> str:
        """The canonical text of the record's fields (hashed with its position)."""
        return canonical(
            {
                "stream": self.stream,
                "at": self.at,
                "actor": self.actor,
                "action": self.action,
                "payload": self.payload,
            }
        )
