"""Appending to a stream, reading its head, exporting the heads."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit.chain import GENESIS, jsonable, link
from audit.models import AuditRecord, AuditStream

log = logging.getLogger("oms.audit")


def record(stream: str, action: str, actor: str, payload: dict[str, Any]) -> AuditRecord:
    """Append ``action`` by ``actor`` to ``stream``, chained to the stream's head, in the
    caller's transaction (the record commits, or not, with the change it describes)."""
    with appending(stream) as append:
        return append(action, actor, payload)


@contextmanager
def appending(stream: str) -> Iterator[Callable[[str, str, dict[str, Any]], AuditRecord]]:
    """Hold ``stream``'s head (its row locked until the transaction ends, so appends to
    one stream are numbered and chained one after another) and give a function that
    appends to it: for a caller that must read the stream before it writes (a
    checkpoint continues where the last one stopped)."""
    with transaction.atomic():
        AuditStream.objects.bulk_create(
            [AuditStream(name=stream, head=GENESIS)], ignore_conflicts=True
        )
        head = AuditStream.objects.select_for_update().get(name=stream)

        def append(action: str, actor: str, payload: dict[str, Any]) -> AuditRecord:
            entry = AuditRecord(
                stream=stream,
                seq=head.seq + 1,
                at=timezone.now(),
                actor=actor[:150],
                action=action,
                payload=jsonable(payload),
                prev_hash=head.head,
            )
            entry.hash = link(entry.prev_hash, str(entry.seq), entry.body())
            entry.save(force_insert=True)
            head.seq, head.head = entry.seq, entry.hash
            head.save(update_fields=["seq", "head"])
            return entry

        yield append


def heads() -> list[dict[str, Any]]:
    return [
        {"stream": name, "seq": seq, "hash": head}
        for name, seq, head in AuditStream.objects.order_by("name").values_list(
            "name", "seq", "head"
        )
    ]


def export_heads() -> list[dict[str, Any]]:
    """Log every stream's head (``event=audit_head stream=... seq=... hash=...``): kept
    outside the database, these lines let ``oms audit verify --heads`` show that the
    history up to them was not rewritten since."""
    current = heads()
    for h in current:
        log.info("event=audit_head stream=%s seq=%s hash=%s", h["stream"], h["seq"], h["hash"])
    return current
