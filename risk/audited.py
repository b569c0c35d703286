"""Limits and trading states as the audit trail says they are: every row must be as its
last audited change left it (``audit.record`` in ``risk/services.py``), so a limit
raised or a kill switch released by SQL shows in ``oms audit verify``."""

from __future__ import annotations

from typing import Any

from audit.chain import jsonable
from audit.models import AuditRecord
from audit.verify import Break
from risk.models import RiskLimit, State, TradingState

STREAM = "risk"  # risk/services.py's AUDIT_STREAM


def verify_current() -> tuple[list[Break], int]:
    """The breaks, and how many rows were never audited (created before the trail; a
    trading state never changed must then still be ACTIVE)."""
    limits: dict[int, Any] = {}
    states: dict[int, str] = {}
    records = AuditRecord.objects.filter(stream=STREAM).order_by("seq")
    for action, p in records.values_list("action", "payload").iterator():
        if action.startswith("limit.") and "limit" in p:
            deleted = action == "limit.deleted"
            limits[p["limit"]] = None if deleted else (p["new_value"], p["new_breach_action"])
        elif action.startswith("trading_state.") and "trading_state" in p:
            states[p["trading_state"]] = p["new_state"]
    breaks: list[Break] = []
    unaudited = 0

    def broken(where: str, problem: str) -> None:
        breaks.append(Break(f"audit:{STREAM}", where, problem))

    for limit in RiskLimit.objects.order_by("pk"):
        where = f"limit {limit.kind} (id {limit.pk})"
        if limit.pk not in limits:
            unaudited += 1
            continue
        want = limits.pop(limit.pk)
        if want is None:
            broken(where, "inserted: its last audited change deleted it")
        elif [jsonable(limit.value), limit.breach_action] != list(want):
            broken(where, f"altered outside the audit trail: value {jsonable(limit.value)}, "
                          f"breach action {limit.breach_action!r} not as last audited")  # fmt: skip
    for limit_id, want in limits.items():
        if want is not None:
            broken(f"limit (id {limit_id})", "removed outside the audit trail")
    for row in TradingState.objects.order_by("pk"):
        if row.pk not in states:
            unaudited += 1
        want = states.get(row.pk, State.ACTIVE)
        if row.state != want:
            broken(f"trading state {row.label} (id {row.pk})",
                   f"altered outside the audit trail: {row.state}, last audited {want}")  # fmt: skip
    return breaks, unaudited
