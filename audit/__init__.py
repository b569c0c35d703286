"""The tamper-evident audit trail (issue 13, item 6).

Risk limit and trading-state changes, venue configuration changes and operator actions
are appended with ``record(stream, action, actor, payload)`` to hash-chained streams
(``audit/chain.py``); order events are chained per order by the one writer
(``orders/writer.py``) and anchored here by periodic checkpoints (``orders/chain.py``).
``heads()`` is each stream's head, which ``export_heads`` logs periodically so that a
rewrite of history can be detected from outside the database; ``oms audit verify``
recomputes every chain.

A leaf: venues, risk and orders import this package; it imports none of them.
"""

from __future__ import annotations

from typing import Any

STREAMS = ("risk", "venues", "operator", "orders")


def record(stream: str, action: str, actor: str, payload: dict[str, Any] | None = None) -> Any:
    """Append a record to ``stream`` in the caller's transaction (see ``audit.trail``)."""
    from audit.trail import record as append

    return append(stream, action, actor, payload or {})


def heads() -> list[dict[str, Any]]:
    """Every stream's head: ``[{"stream", "seq", "hash"}]``, for logs and metrics."""
    from audit.trail import heads as read

    return read()
