"""Recomputing the audit streams' chains, and checking heads exported earlier."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from audit.chain import GENESIS, link
from audit.models import AuditRecord, AuditStream

HEAD_LINE = re.compile(r"event=audit_head stream=(\S+) seq=(\d+) hash=([0-9a-f]{64})")


@dataclass(frozen=True)
class Break:
    """The first record of a stream that is not what the chain says it should be."""

    stream: str
    record: str  # e.g. "seq 4 (id 17)"
    problem: str

    def __str__(self) -> str:
        return f"{self.stream} {self.record}: {self.problem}"


def check_chain(
    stream: str,
    rows: Iterable[tuple[int, int, str, str, str]],
    *,
    head_seq: int,
    head_hash: str,
    unit: str = "seq",
) -> Break | None:
    """The first break in one stream: ``rows`` are ``(id, seq, prev_hash, hash, body)``
    in sequence order, the head is what the stream's head row says. One rule for the
    audit streams and for every order's events."""
    expected, prev = 1, GENESIS
    for row_id, seq, prev_hash, hash_, body in rows:
        where = f"{unit} {seq} (id {row_id})"
        if seq > head_seq:
            return Break(stream, where, f"inserted: after the stream's head ({unit} {head_seq})")
        if seq != expected:
            return Break(
                stream,
                f"{unit} {expected}",
                f"removed: the stream goes from {unit} {expected - 1} to {unit} {seq}",
            )
        if prev_hash != prev:
            before = f"the hash of {unit} {seq - 1}" if seq > 1 else "the stream's start (0...0)"
            return Break(
                stream,
                where,
                f"inserted or a record removed before it: its prev_hash is not {before}",
            )
        if link(prev_hash, str(seq), body) != hash_:
            return Break(stream, where, "altered: its content does not match its hash")
        expected, prev = seq + 1, hash_
    if expected - 1 != head_seq:
        return Break(
            stream,
            f"{unit} {expected}",
            f"removed: the stream's head is {unit} {head_seq} but its records end at "
            f"{unit} {expected - 1}",
        )
    if prev != head_hash:
        return Break(
            stream, f"{unit} {head_seq}", "altered: the stream's head hash is not its last hash"
        )
    return None


def verify_streams() -> list[Break]:
    """The first break of every audit stream (none: every chain holds)."""
    breaks = []
    for stream in AuditStream.objects.order_by("name"):
        records = AuditRecord.objects.filter(stream=stream.name).order_by("seq")
        found = check_chain(
            f"audit:{stream.name}",
            ((r.pk, r.seq, r.prev_hash, r.hash, r.body()) for r in records.iterator()),
            head_seq=stream.seq,
            head_hash=stream.head,
        )
        if found:
            breaks.append(found)
    orphans = AuditRecord.objects.exclude(stream__in=AuditStream.objects.values("name"))
    for r in orphans.order_by("stream", "seq").distinct("stream"):
        breaks.append(
            Break(f"audit:{r.stream}", f"seq {r.seq} (id {r.pk})", "inserted: no such stream")
        )
    return breaks


def parse_heads(lines: Iterable[str]) -> list[tuple[str, int, str]]:
    """``(stream, seq, hash)`` of every ``event=audit_head`` line (a log file)."""
    found = []
    for line in lines:
        match = HEAD_LINE.search(line)
        if match:
            found.append((match[1], int(match[2]), match[3]))
    return found


def verify_exported(heads: Iterable[tuple[str, int, str]]) -> list[Break]:
    """Heads exported earlier must still be in their streams with the same hash: a
    stream rewritten since (every hash recomputed, so its chain holds) fails here."""
    breaks, seen = [], set()
    for stream, seq, hash_ in heads:
        if (stream, seq) in seen or seq == 0:
            continue
        seen.add((stream, seq))
        stored = AuditRecord.objects.filter(stream=stream, seq=seq).values_list("hash", flat=True)
        now = stored.first()
        if now is None:
            breaks.append(
                Break(f"audit:{stream}", f"seq {seq}", "removed: exported earlier, gone now")
            )
        elif now != hash_:
            breaks.append(
                Break(
                    f"audit:{stream}",
                    f"seq {seq}",
                    f"rewritten: its hash is not the one exported earlier ({hash_[:12]}...)",
                )
            )
    return breaks
