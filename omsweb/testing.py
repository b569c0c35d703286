"""Pytest plugin (``-p omsweb.testing``): real services for the tests.

Loaded before Django settings are read. With ``DATABASE_URL`` / ``REDIS_URL`` unset it
starts an embedded PostgreSQL and Redis in a throw-away directory (the same mechanism as
``oms up``) and stops them when the run ends. With them set (CI's second pass, against
the machine's services) the tests use a Redis database of their own
(``OMS_TEST_REDIS_DB``, default 15) so they never touch production keys.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

TEST_REDIS_DB = os.environ.get("OMS_TEST_REDIS_DB", "15")


def _with_db(url: str, db: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def _setup() -> None:
    if os.environ.get("OMS_TEST_ENV_READY"):
        return  # a subprocess of the test run: inherit the parent's choice
    from omsweb import embedded

    home = Path(tempfile.mkdtemp(prefix="oms-test-"))
    os.environ["OMS_HOME"] = str(home)
    started = not os.environ.get("DATABASE_URL") or not os.environ.get("REDIS_URL")
    embedded.ensure_environment(home)
    os.environ["REDIS_URL"] = _with_db(os.environ["REDIS_URL"], TEST_REDIS_DB)
    os.environ["OMS_TEST_ENV_READY"] = "1"
    # One task-message key for the whole run: the stacks it starts (their own OMS_HOME)
    # and this process sign and check task messages alike (omsweb/task_auth.py).
    os.environ.setdefault("OMS_TASK_KEY", secrets.token_urlsafe(48))

    import redis

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()

    def cleanup() -> None:
        if started:
            embedded.stop_services(home)
        shutil.rmtree(home, ignore_errors=True)

    atexit.register(cleanup)


_setup()
