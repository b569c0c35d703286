"""Risk tasks: thin wrappers around ``risk/killswitch.py`` and ``risk/services.py``."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(
    name="oms.urgent.risk_kill_sweep",
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=5,
    time_limit=120,
)
def kill_sweep(
    self: Any, change_id: int, follow_up: bool = False, groups: list[list[int]] | None = None
) -> dict[str, Any]:
    """Cancel every working order in the scope of a HALTED engagement (urgent queue).

    Idempotent: orders already canceled or pending cancel are left alone, a venue
    cancel-all with nothing open answers nothing, a released scope is not swept.
    """
    from risk.killswitch import sweep

    try:
        return sweep(change_id, follow_up=follow_up, groups=groups)
    except Exception as exc:  # the database or broker blinked: a kill must not be lost
        raise self.retry(exc=exc, countdown=min(5.0, 0.5 * 2**self.request.retries)) from exc


@shared_task(name="oms.recon.risk_roll_day", acks_late=True, time_limit=60, expires=50)
def roll_day() -> int:
    """Start the trading day's P&L of every account at the UTC day change. Idempotent."""
    from risk.services import roll_trading_day

    return roll_trading_day()
