"""``GET /metrics``: Prometheus text format, for the whole OMS.

Two parts: what every process counted (``omsweb/metrics.py``, added up from the
multi-process directory) and the state read now, at scrape time (one query, a few Redis
calls, the process manager's socket), so that nothing on the order path keeps a gauge
up to date:

* ``oms_orders{status}``: orders by status (one ``GROUP BY`` over the orders table);
* ``oms_venue_breaker_state{venue}``: 0 closed, 1 half-open, 2 open, -1 unknown;
* ``oms_venue_rate_limit_usage_ratio{venue,pool}``, ``oms_venue_rate_limit_paused_seconds``;
* ``oms_venue_book_age_seconds{venue}``: age of the venue's newest book in Redis;
* ``oms_queue_depth{queue}``: messages waiting in each Celery queue (Redis lists);
* ``oms_process_running{process}``: 1 when the supervised process is RUNNING.

**Access.** Without login from the machine itself (the client address is loopback:
Prometheus or an agent on the host, or a reverse proxy there), or from anywhere with
``Authorization: Bearer <OMS_METRICS_TOKEN>`` when that setting is set (Prometheus'
``authorization`` scrape option). Anything else is 403. The counts say how busy the desk
is, not what it trades: no account, user or symbol label is exported except market
data's symbols.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from omsweb.errors import error_body

log = logging.getLogger(__name__)

LOOPBACK = frozenset({"127.0.0.1", "::1"})
BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}
PRIORITY_SEP = "\x06\x16"  # kombu's Redis transport: "<queue>\x06\x16<priority>" lists


def allowed(request: HttpRequest) -> bool:
    if request.META.get("REMOTE_ADDR") in LOOPBACK:
        return True
    token = settings.METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    return bool(token) and hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        return JsonResponse(
            error_body(
                "FORBIDDEN",
                "/metrics: only from 127.0.0.1, or with Authorization: Bearer <OMS_METRICS_TOKEN>",
            ),
            status=403,
        )
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class StateCollector:
    """The OMS's state, read at scrape time. A part that cannot be read (Redis down) is
    left out and logged, the rest is still served."""

    def collect(self) -> Iterator[Any]:
        for part in (_orders, _venues, _queues, _processes):
            try:
                yield from part()
            except Exception:  # a scrape reports what it can
                log.warning("metrics: %s unavailable", part.__name__, exc_info=True)


def _orders() -> Iterator[Any]:
    from django.db.models import Count
    from prometheus_client.core import GaugeMetricFamily

    from orders.domain.lifecycle import OrderStatus
    from orders.models import Order

    family = GaugeMetricFamily("oms_orders", "Orders by status", labels=["status"])
    counts = dict(Order.objects.values_list("status").annotate(n=Count("id")).order_by())
    for status in OrderStatus:
        family.add_metric([status.value], counts.get(status.value, 0))
    yield family


def _venues() -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    from omsweb.redis_client import client
    from venues.models import Venue
    from venues.status import venue_states

    rows = list(Venue.objects.order_by("name").values("name", "driver", "enabled", "rate_limits"))
    states = venue_states(client(), rows, [])  # books: the newest of any symbol
    breaker = GaugeMetricFamily(
        "oms_venue_breaker_state",
        "Circuit breaker: 0 closed, 1 half-open, 2 open, -1 unknown",
        labels=["venue"],
    )
    usage = GaugeMetricFamily(
        "oms_venue_rate_limit_usage_ratio",
        "Share of each rate-limit pool in use",
        labels=["venue", "pool"],
    )
    paused = GaugeMetricFamily(
        "oms_venue_rate_limit_paused_seconds",
        "Seconds left of a venue-wide pause after a 429",
        labels=["venue"],
    )
    age = GaugeMetricFamily(
        "oms_venue_book_age_seconds", "Age of the venue's newest book in Redis", labels=["venue"]
    )
    for s in states:
        venue = s["venue"]
        breaker.add_metric([venue], BREAKER_VALUES.get(s["breaker"], -1))
        rate = s.get("rate_limit") or {}
        for pool, share in (rate.get("usage") or {}).items():
            usage.add_metric([venue, pool], share)
        paused.add_metric([venue], rate.get("paused_for_s") or 0.0)
        if s["book_age_s"] is not None:
            age.add_metric([venue], s["book_age_s"])
    yield from (breaker, usage, paused, age)


def _queues() -> Iterator[Any]:
    """Every Celery queue of the OMS (``oms.*`` lists, whatever the queue layout), its
    priority lists added up."""
    from prometheus_client.core import GaugeMetricFamily

    from omsweb.celery import QUEUES
    from omsweb.redis_client import client

    redis = client()
    keys = [k.decode() for k in redis.scan_iter(match="oms.*", count=1000, _type="list")]
    pipe = redis.pipeline(transaction=False)
    for key in keys:
        pipe.llen(key)
    depths = {q: 0 for q in QUEUES}
    for key, n in zip(keys, pipe.execute(), strict=True):
        queue = key.split(PRIORITY_SEP)[0]
        depths[queue] = depths.get(queue, 0) + int(n)
    family = GaugeMetricFamily(
        "oms_queue_depth", "Messages waiting in each Celery queue", labels=["queue"]
    )
    for queue, n in sorted(depths.items()):
        family.add_metric([queue], n)
    yield family


def _processes() -> Iterator[Any]:
    from prometheus_client.core import GaugeMetricFamily

    from omsweb import procmgr

    family = GaugeMetricFamily(
        "oms_process_running",
        "1 when the supervised process is RUNNING (0: starting, backoff, fatal...)",
        labels=["process"],
    )
    # none when the processes are not run by the process manager
    for name, state in (procmgr.states(settings.OMS_HOME) or {}).items():
        family.add_metric([name], 1 if state["state"] == "RUNNING" else 0)
    yield family
