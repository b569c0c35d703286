"""Alert-worthy events: one WARNING line each, with a stable event name, on the logger
``oms.alerts``. The names below are a contract (log-based alert rules match them):
rename one only with the rules that use it.

    WARNING oms.alerts: event=breaker_open venue=sim-a failures=5

Each alert is also counted in ``/metrics`` as ``oms_alerts_total{event="..."}``, so a
Prometheus rule can fire on ``increase(oms_alerts_total[5m]) > 0`` without reading logs.
Nothing here imports Django.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("oms.alerts")

BREAKER_OPEN = "breaker_open"  # a venue's circuit breaker opened (venues/guard.py)
RECONCILIATION_MISMATCH = (
    "reconciliation_mismatch"  # a run found a difference (orders/reconcile.py)
)
PROCESS_RESTART = (
    "process_restart"  # a supervised process died and is restarted (omsweb/procmgr.py)
)
PROCESS_FATAL = "process_fatal"  # a process failed to start too often and stays down
KILL_SWITCH_ENGAGED = "kill_switch_engaged"  # a scope set to HALTED or REDUCING (risk/services.py)

EVENTS = frozenset(
    {BREAKER_OPEN, RECONCILIATION_MISMATCH, PROCESS_RESTART, PROCESS_FATAL, KILL_SWITCH_ENGAGED}
)


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(c.isspace() or c in '"=' for c in text):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def alert(event: str, **fields: Any) -> None:
    """Log ``event`` at WARNING as ``event=NAME key=value ...`` and count it."""
    if event not in EVENTS:
        raise ValueError(f"unknown alert event {event!r}; known: {sorted(EVENTS)}")
    from omsweb import metrics

    metrics.ALERTS.labels(event=event).inc()
    text = " ".join(f"{key}={_value(value)}" for key, value in fields.items())
    log.warning("event=%s %s", event, text)
