"""The whole OMS as real processes (omsweb/stack.py): simulated exchange, web, Celery
workers and beat, venue stream.

The stack runs on a database and a Redis db of its own (not pytest-django's test
database), so other tests' flushes never pull rows from under its processes. It is
started once per session; system tests share it, so each test uses its own client order
ids and checks position changes as deltas. Tests talk to it only over HTTP.
"""

from __future__ import annotations

from omsweb.stack import SIM_KEY, SIM_SECRET, Stack, wait_for

__all__ = ["SIM_KEY", "SIM_SECRET", "Stack", "order_status", "wait_for"]

# The session ``stack`` fixture lives in tests/conftest.py: tests/browser shares it.


def order_status(api, order_id: int, *statuses: str):
    """A predicate for wait_for: the order once it has one of ``statuses``."""

    def check():
        body = api.get(f"/api/v1/orders/{order_id}/").json()
        return body if body["status"] in statuses else None

    return check
