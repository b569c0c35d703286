"""The router's task: one round of a parent order (``routing/parents.py``), on the
``oms.route`` queue (served by the reports worker: it calls no venue)."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import InterfaceError, OperationalError

from orders.engine import ROUTE_TASK
from routing import parents


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
