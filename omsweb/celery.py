"""The Celery app: the queues, routed by task name (and, for venue calls, by venue).

=================  ===============================================  ========================
queue              tasks                                            worker
=================  ===============================================  ========================
oms.urgent         cancels, cancel-all, kill switch                 never behind new orders
oms.orders.VENUE   submit, amend, re-send of orders at VENUE        that venue's own worker
oms.reports        apply execution reports from venues              reports worker
oms.recon          reconciliation, outbox sweep, stale-state checks recon worker + beat
                   and audit checkpoints
oms.route          plan a round of a parent order's children        reports worker
                   (routing/parents.py; calls no venue)
=================  ===============================================  ========================

A slow venue delays only its own orders: each venue's calls have a queue and a worker of
their own (``oms worker --venue NAME``), and execution reports, which call no venue,
never wait behind a venue call (docs/RELIABILITY.md, "One slow venue").

Reliability settings (acks late, reject on worker lost, prefetch 1, visibility timeout)
live in ``omsweb/settings.py`` under ``CELERY_``. Every message is authenticated
(``omsweb/task_auth.py``): signed when published, checked before its task runs.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_init,
    worker_ready,
)
from kombu import Queue

from omsweb import task_auth

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omsweb.settings")

# The queues every deployment has; each venue adds its own (``venue_queue``).
QUEUES = ("oms.urgent", "oms.reports", "oms.recon", "oms.route")
VENUE_TASKS = "oms.orders."  # task name prefix of the venue calls of one order


def venue_queue(venue_name: str) -> str:
    """The queue of the venue calls (submit, amend, re-send) of orders at ``venue_name``."""
    return f"{VENUE_TASKS}{venue_name}"


# Task name prefix -> queue. Every task has an explicit name under one of these.
# ``oms.orders.*`` go to their order's venue queue: ``orders.tasks.route_venue_task`` (named
# by path: the Celery app imports nothing of orders).
ROUTES = (
    "orders.tasks.route_venue_task",
    {
        "oms.urgent.*": {"queue": "oms.urgent"},
        "oms.reports.*": {"queue": "oms.reports"},
        "oms.recon.*": {"queue": "oms.recon"},
        "oms.route.*": {"queue": "oms.route"},
        "oms.ping": {"queue": "oms.reports"},
    },
)


class OmsCelery(Celery):
    def send_task(self, name: str, args: Any = None, kwargs: Any = None, **options: Any) -> Any:
        """``send_task`` by name does not know the task's ``ignore_result``, so Celery
        subscribes to the result channel of every task sent that way: a Redis round trip
        on the order path and a subscription never dropped. Our tasks store no results
        (``task_ignore_result``); a caller that wants one says ``ignore_result=False``."""
        options.setdefault("ignore_result", self.conf.task_ignore_result)
        return super().send_task(name, args, kwargs, **options)


app = OmsCelery("oms", task_cls=task_auth.AuthenticatedTask)
before_task_publish.connect(task_auth.sign_message, weak=False)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = [Queue(name) for name in QUEUES]
app.conf.task_routes = ROUTES
app.conf.beat_schedule = {
    "outbox-sweep": {"task": "oms.recon.sweep_outbox", "schedule": 2.0},
    "in-doubt-sweep": {"task": "oms.recon.sweep_in_doubt", "schedule": 10.0},
    "risk-roll-day": {"task": "oms.recon.risk_roll_day", "schedule": 60.0},
    "risk-warm-venues": {"task": "oms.urgent.risk_warm_venues", "schedule": 30.0},
    "reconcile": {"task": "oms.recon.reconcile_all", "schedule": 30.0},
    "audit-checkpoint": {"task": "oms.recon.audit_checkpoint", "schedule": 60.0},
    "tca-sweep": {"task": "oms.recon.tca_sweep", "schedule": 1.0},
    "balances": {"task": "oms.recon.refresh_balances", "schedule": 30.0},
}
app.autodiscover_tasks(["orders", "venues", "risk", "routing"])


@app.task(name="oms.ping", ignore_result=False)
def ping() -> str:
    """A no-op: the health check and the benchmarks' Celery floor."""
    return "pong"


@worker_init.connect
def _persistent_db_connections(**kwargs: Any) -> None:
    """Workers use one persistent database connection per process, not the pool (see
    ``WORKER_CONN_MAX_AGE`` in settings). Before any child is forked."""
    from django.conf import settings
    from django.db import connections

    for alias in connections:
        db = connections.settings[alias]
        db.get("OPTIONS", {}).pop("pool", None)
        db["CONN_MAX_AGE"] = settings.WORKER_CONN_MAX_AGE
        # No health check (a SELECT 1 before each task's first query: a round trip on
        # the order path). A connection the server dropped fails that task's first
        # query; it is closed after the task (Django's errors rule) and the order tasks
        # retry at once on a fresh one (orders/tasks.py).
        db["CONN_HEALTH_CHECKS"] = False
    connections.close_all()


@task_prerun.connect
@task_postrun.connect
def _db_connection_per_task(**kwargs: Any) -> None:
    """What Django does around a request, around a task: close the connection if it
    broke or is too old (a failed transaction, a restarted server); reuse it otherwise."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        conn.close_if_unusable_or_obsolete()


@worker_ready.connect
def _reconcile_on_startup(sender=None, **kwargs) -> None:  # noqa: ANN001
    """A worker consuming the recon queue reconciles every venue when it starts."""
    queues = {q.name for q in sender.app.amqp.queues.consume_from.values()} if sender else set()
    if "oms.recon" in queues:
        sender.app.send_task("oms.recon.reconcile_all", args=("startup",))
