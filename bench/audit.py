"""The audit chain's cost on the order path: sealing one order event (its canonical
body and the SHA-256 link, ``orders/chain.py``'s ``seal``), in process, on a typical
event. The writer does this once per event, under the order's row lock; the mark
(PENDING_NEW -> SUBMITTED) builds the body in Python and hashes in PostgreSQL.

    python -m bench.audit            # prints audit_seal_p50_us, audit_seal_p99_us

Also run by ``make bench`` with the other in-process sections (``--only extra``).
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from audit.chain import canonical, link
from bench.stats import pct


def _typical_event() -> dict[str, Any]:
    """A fill's event: the largest payload the engine writes on the hot path."""
    return {
        "kind": "OrderPartiallyFilled",
        "source": "venue",
        "status": "PARTIALLY_FILLED",
        "payload": {
            "trade_id": "1234567",
            "quantity": "0.00150000",
            "price": "60012.34000000",
            "fee": "0.00000150",
            "fee_currency": "BTC",
            "is_maker": False,
            "executed_at": "2026-12-06T10:00:00.123000+00:00",
            "report": {"venue_order_id": "987654321", "cumulative": "0.003"},
        },
        "late": False,
        "created_at": datetime.now(UTC),
    }


def bench_audit_seal(n: int = 20_000) -> dict[str, float]:
    fields, prev = _typical_event(), "ab" * 32
    out = []
    for i in range(n + 500):
        t0 = time.perf_counter()
        prev = link(prev, str(i + 1), canonical(fields))
        if i >= 500:  # warm-up
            out.append((time.perf_counter() - t0) * 1e6)
    return {
        "audit_seal_p50_us": round(pct(out, 0.5), 2),
        "audit_seal_p99_us": round(pct(out, 0.99), 2),
    }


if __name__ == "__main__":
    print(json.dumps(bench_audit_seal(), indent=2))
