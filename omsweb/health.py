"""Health: the database, Redis, a Celery worker consuming each queue, and (under the
process manager, ``oms up``) the state of every process: one that is STARTING, in
BACKOFF (restarting after it died) or FATAL makes the OMS ``degraded``."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.db import connection
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from omsweb import procmgr
from omsweb.celery import QUEUES, app


def _timed(check) -> dict[str, Any]:  # noqa: ANN001
    started = time.perf_counter()
    try:
        detail = check()
        ok = True
    except Exception as exc:  # a health check reports failures, it does not raise them
        detail, ok = f"{type(exc).__name__}: {exc}", False
    out = {"status": "up" if ok else "down", "ms": round((time.perf_counter() - started) * 1e3, 2)}
    if detail:
        out["detail"] = detail
    return out


def _database() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return None


def _redis() -> str | None:
    from omsweb.redis_client import client

    client().ping()
    return None


def _workers() -> dict[str, Any]:
    replies = app.control.inspect(timeout=1.0).active_queues() or {}
    consumers: dict[str, list[str]] = {q: [] for q in QUEUES}
    for worker, queues in replies.items():
        for queue in queues:
            consumers.setdefault(queue["name"], []).append(worker)
    return {
        q: {"status": "up" if workers else "down", "workers": sorted(workers)}
        for q, workers in consumers.items()
        if q in QUEUES
    }


def health_report(*, workers: bool = True) -> dict[str, Any]:
    report: dict[str, Any] = {"database": _timed(_database), "redis": _timed(_redis)}
    if workers:
        try:
            report["queues"] = _workers()
        except Exception as exc:
            report["queues"] = {q: {"status": "down", "detail": str(exc)} for q in QUEUES}
    up = all(v["status"] == "up" for k, v in report.items() if k != "queues")
    if workers:
        up = up and all(v["status"] == "up" for v in report["queues"].values())
        processes = procmgr.states(settings.OMS_HOME)
        if processes is not None:  # run by the process manager
            report["processes"] = processes
            up = up and all(p["state"] == "RUNNING" for p in processes.values())
    report["status"] = "up" if up else "degraded"
    return report


@extend_schema(responses={200: dict, 503: dict})
@api_view(["GET"])
def health(request: Request) -> Response:
    """Database, Redis, each worker queue with timings, and each supervised process
    (state, pid, uptime) when run by ``oms up`` (auth required)."""
    report = health_report()
    return Response(report, status=200 if report["status"] == "up" else 503)


@extend_schema(exclude=True)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def healthz(request: Request) -> Response:
    """Liveness for load balancers: database and Redis only, no auth."""
    report = health_report(workers=False)
    return Response(report, status=200 if report["status"] == "up" else 503)
