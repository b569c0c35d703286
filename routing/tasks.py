"""Routing's tasks: one round of a parent order (``routing/parents.py``, on the
``oms.route`` queue, served by the reports worker: it calls no venue), and the periodic
TCA sweep (``routing/tca.py``)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from orders.engine import ROUTE_TASK
from routing import parents


@shared_task(name="oms.recon.tca_sweep", acks_late=True, time_limit=30, expires=5)
def tca_sweep() -> dict[str, int]:
    """Give new top-level orders their TCA row (arrival mid) and sample the markouts that
    are due, at most one batch of each a run (the rest waits for the next run, a second
    later). Idempotent: rows are inserted only where missing, samples are taken from Redis
    atomically, a sample stored twice stores the same mid, a failed batch is put back."""
    from routing.tca import sweep_arrivals, sweep_markouts

    return {"arrivals": sweep_arrivals(), "markouts": sweep_markouts()}


@shared_task(
    name=ROUTE_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=8,
    time_limit=30,
    soft_time_limit=20,
)
def route_parent(self: Any, parent_id: int) -> str:
    """Plan and send one round of children of ``parent_id``. Idempotent: a round runs
    only for a parent with no child open (a repeat finds the round's children, or the
    parent finished, and does nothing)."""
    try:
        return parents.route(parent_id)
    except (InterfaceError, OperationalError) as exc:
        raise self.retry(exc=exc, countdown=0.05) from exc


@shared_task(name="oms.recon.refresh_balances", acks_late=True, time_limit=60, expires=20)
def refresh_balances() -> list[str]:
    """Cache every enabled venue's free balances for the router (``venues/balances.py``).
    Idempotent: each run overwrites the cache with the venues' answers."""
    from omsweb.redis_client import client
    from venues.balances import refresh
    from venues.guard import guarded_adapter
    from venues.models import Venue

    return refresh(client(), list(Venue.objects.filter(enabled=True)), guarded_adapter)
