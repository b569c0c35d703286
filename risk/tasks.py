"""Risk tasks: thin wrappers around ``risk/killswitch.py`` and ``risk/services.py``."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import worker_ready


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


@shared_task(name="oms.urgent.risk_warm_venues", acks_late=True, time_limit=60, expires=25)
def warm_venues() -> list[str]:
    """Build every enabled venue's adapter and load its markets in this urgent worker, so
    a kill switch's first cancel-all is not delayed by that (seconds on a busy machine),
    and publish the symbols each venue lists (routing sends an order only there).
    Idempotent and cheap when warm; a venue that is down is skipped."""
    import logging

    from omsweb.redis_client import client
    from venues.guard import guarded_adapter
    from venues.models import Venue
    from venues.status import check_config, publish_markets

    warm = []
    redis = client()
    for venue in Venue.objects.filter(enabled=True):
        if check_config(redis, venue):
            continue  # marked MISCONFIGURED (one WARNING); checked again next time
        try:
            markets = guarded_adapter(venue).capabilities().markets
            if markets:  # what routing may send where (routing/venue_choice.py)
                publish_markets(redis, venue.name, markets)
            warm.append(venue.name)
        except Exception as exc:  # down or misconfigured: the sweep falls back per order
            logging.getLogger(__name__).warning("warming %s failed: %s", venue.name, exc)
    return warm


@worker_ready.connect
def _warm_on_start(sender: Any = None, **kwargs: Any) -> None:
    """An urgent worker warms its venue adapters as soon as it starts."""
    if sender is None:
        return
    queues = {q.name for q in sender.app.amqp.queues.consume_from.values()}
    if "oms.urgent" in queues:
        sender.app.send_task("oms.urgent.risk_warm_venues")
