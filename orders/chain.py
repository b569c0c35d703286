"""Order events in the audit trail: one hash chain per order, and its anchors.

Each ``OrderEvent`` carries ``prev_hash`` (its order's event before it, ``GENESIS`` for
the first) and ``hash`` = ``audit.chain.link(prev_hash, sequence, body)``, where the body
is the event's own fields in canonical form; the order row carries the head
(``event_hash``). The one writer seals each event under the order's row lock, from the
order it already holds: no extra query on the order path.

A chain per order cannot show, by itself, a history rewritten with every hash recomputed.
So a periodic ``checkpoint`` (beat task ``oms.recon.audit_checkpoint``) appends to the
audit stream ``orders`` a digest of every event hash written since the last one, in id
order, and the stream heads are logged (``audit.trail.export_heads``): events rewritten
after their checkpoint no longer match it, and a rewritten ``orders`` stream no longer
matches the heads logged outside the database. A checkpoint covers events older than
``CHECKPOINT_LAG`` only, so that every transaction that took an event id below its end
has committed (an event committed later than that would be reported as a mismatch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from audit.chain import canonical, link
from audit.trail import appending
from audit.verify import Break, check_chain
from orders.models import Order, OrderEvent

STREAM = "orders"
CHECKPOINT_LAG = timedelta(seconds=60)
CHECKPOINT_MAX_EVENTS = 200_000


def event_body(event: Any) -> str:
    """The canonical text of an event's own fields (works on historical models too)."""
    return canonical(
        {
            "kind": event.kind,
            "source": event.source,
            "status": event.status,
            "payload": event.payload,
            "late": event.late,
            "created_at": event.created_at,
        }
    )


def seal(event: Any, prev_hash: str) -> str:
    """Chain ``event`` (its sequence and fields set) to ``prev_hash``; its hash."""
    event.prev_hash = prev_hash
    event.hash = link(prev_hash, str(event.sequence), event_body(event))
    return str(event.hash)


# --- checkpoints -----------------------------------------------------------------------


def _window(
    after_id: int, *, upto_id: int | None = None, until: Any = None
) -> tuple[int, int, str]:
    """``(events, last id, digest)`` of the event hashes after ``after_id`` in id order, up
    to ``upto_id``, or up to the first event created after ``until`` (and at most
    ``CHECKPOINT_MAX_EVENTS``)."""
    rows = OrderEvent.objects.filter(id__gt=after_id).order_by("id")
    if upto_id is not None:
        rows = rows.filter(id__lte=upto_id)
    else:
        rows = rows[:CHECKPOINT_MAX_EVENTS]
    digest, count, last = hashlib.sha256(), 0, after_id
    for event_id, created_at, hash_ in rows.values_list("id", "created_at", "hash").iterator(
        chunk_size=5000
    ):
        if until is not None and created_at > until:
            break
        digest.update(hash_.encode("ascii"))
        count, last = count + 1, event_id
    return count, last, digest.hexdigest()


def checkpoint(*, now: Any = None) -> dict[str, Any] | None:
    """Anchor in the ``orders`` stream every event written since the last checkpoint
    and older than ``CHECKPOINT_LAG``; its payload, or None when there was none."""
    until = (now or timezone.now()) - CHECKPOINT_LAG
    with appending(STREAM) as append:
        from audit.models import AuditRecord

        last = (
            AuditRecord.objects.filter(stream=STREAM, action="checkpoint")
            .order_by("-seq")
            .values_list("payload", flat=True)
            .first()
        )
        after = int(last["to_id"]) if last else 0
        count, upto, digest = _window(after, until=until)
        if not count:
            return None
        payload = {"from_id": after, "to_id": upto, "events": count, "digest": digest}
        append("checkpoint", "oms", payload)
    return payload


# --- verification ----------------------------------------------------------------------


def verify_events() -> list[Break]:
    """The first break of every order's event chain (none: every chain holds)."""
    breaks: list[Break] = []
    rows = OrderEvent.objects.order_by("order_id", "sequence").select_related("order")
    current: int | None = None
    chain: list[tuple[int, int, str, str, str]] = []
    head: tuple[int, str] = (0, "")

    def close() -> None:
        if current is None:
            return
        found = check_chain(f"order {current}", chain, head_seq=head[0], head_hash=head[1])
        if found:
            breaks.append(found)

    for event in rows.iterator(chunk_size=2000):
        if event.order_id != current:
            close()
            current, chain = event.order_id, []
            head = (event.order.event_sequence, event.order.event_hash)
        chain.append((event.pk, event.sequence, event.prev_hash, event.hash, event_body(event)))
    close()
    for order_id, seq in Order.objects.filter(
        events__isnull=True, event_sequence__gt=0
    ).values_list("id", "event_sequence"):
        breaks.append(
            Break(
                f"order {order_id}",
                "seq 1",
                f"removed: the order's head is seq {seq} but it has no events",
            )
        )
    return sorted(breaks, key=lambda b: int(b.stream.split()[1]))


def verify_checkpoints() -> list[Break]:
    """Every checkpoint's events must still be the events it anchored."""
    from audit.models import AuditRecord

    breaks = []
    checkpoints = AuditRecord.objects.filter(stream=STREAM, action="checkpoint").order_by("seq")
    for cp in checkpoints.iterator():
        p = cp.payload
        count, _, digest = _window(int(p["from_id"]), upto_id=int(p["to_id"]))
        if (count, digest) != (p["events"], p["digest"]):
            breaks.append(
                Break(
                    f"audit:{STREAM}",
                    f"seq {cp.seq} (id {cp.pk})",
                    f"order events with ids {p['from_id'] + 1}..{p['to_id']} are not the ones "
                    f"this checkpoint anchored ({count} events now, {p['events']} then): "
                    "history rewritten in that range",
                )
            )
    return breaks


def verify(*, exported: Iterable[tuple[str, int, str]] = ()) -> list[Break]:
    """The whole trail: every audit stream's chain, every order's event chain, every
    checkpoint, and the heads ``exported`` earlier (``audit.verify.parse_heads`` of a
    log). Each break names the first bad record of its stream; none: the trail holds."""
    from audit.verify import verify_exported, verify_streams

    return verify_streams() + verify_events() + verify_checkpoints() + verify_exported(exported)
