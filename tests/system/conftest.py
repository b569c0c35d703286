"""The whole OMS as real processes (omsweb/stack.py): simulated exchange, web, Celery
workers and beat, venue stream.

The stack runs on a database and a Redis db of its own (not pytest-django's test
database), so other tests' flushes never pull rows from under its processes. It is
started once per session; system tests share it, so each test uses its own client order
ids and checks position changes as deltas. Tests talk to it only over HTTP.
"""

from __future__ import annotations

import os

import pytest

from omsweb import stack as stack_mod
from omsweb.stack import SIM_KEY, SIM_SECRET, Stack, free_port, wait_for

__all__ = ["SIM_KEY", "SIM_SECRET", "Stack", "order_status", "wait_for"]


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("stack")
    sim_port = free_port()
    redis_db = int(os.environ.get("OMS_TEST_REDIS_DB", "15")) - 2
    env = stack_mod.isolated_env(dict(os.environ), db_name="test_oms_stack", redis_db=redis_db)
    env.update(OMS_HOME=str(logdir), OMS_LOG_LEVEL="INFO")
    token = stack_mod.setup_database(env, sim_port, "sys-trader")
    running = stack_mod.launch(env, logdir, token=token, sim_port=sim_port)
    yield running
    running.stop()


def order_status(api, order_id: int, *statuses: str):
    """A predicate for wait_for: the order once it has one of ``statuses``."""

    def check():
        body = api.get(f"/api/v1/orders/{order_id}/").json()
        return body if body["status"] in statuses else None

    return check
