"""The whole OMS as real processes: simulated exchange, web, Celery workers and beat,
venue stream; all against the test database and a test Redis database.

The stack is started once per session. System tests share it, so each test uses its
own client order ids and checks position changes as deltas.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.conftest import Api, Proc, free_port, test_database_env, wait_http

SIM_KEY = "system-test-key"
SIM_SECRET = "system-test-secret"


@dataclass
class Stack:
    web: str
    sim: str
    token: str
    procs: dict[str, Proc] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    logdir: Path | None = None

    def api(self) -> Api:
        return Api(self.web, self.token)

    def sim_post(self, path: str, body: dict) -> dict:
        r = requests.post(self.sim + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def sim_get(self, path: str, **params) -> dict:
        r = requests.get(self.sim + path, params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.tail(25)}" for n, p in self.procs.items())

    def start(self, name: str, argv: list[str]) -> Proc:
        assert self.logdir is not None
        proc = Proc(argv, self.env, self.logdir / f"{name}.log")
        self.procs[name] = proc
        return proc


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.1):
    """Poll until ``predicate()`` is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")


def worker_argvs() -> dict[str, list[str]]:
    from omsweb.cli import WORKERS, worker_argv

    return {
        f"worker-{name}": worker_argv(queues, name=f"{name}-test", concurrency=c, beat=beat)
        for name, (queues, c, beat) in WORKERS.items()
    }


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    from omsweb.cli import web_argv

    logdir = tmp_path_factory.mktemp("stack")
    with django_db_blocker.unblock():
        env = test_database_env()
        sim_port, web_port = free_port(), free_port()
        env.update(
            SIMEX_API_KEY=SIM_KEY,
            SIMEX_API_SECRET=SIM_SECRET,
            OMS_HOME=str(logdir),
            OMS_LOG_LEVEL="INFO",
        )
        token = _prepare_data(sim_port)
    stack = Stack(
        web=f"http://127.0.0.1:{web_port}",
        sim=f"http://127.0.0.1:{sim_port}",
        token=token,
        env=env,
        logdir=logdir,
    )
    py = sys.executable
    stack.start(
        "sim-a",
        [py, "-m", "venues.sim", "--name", "sim-a", "--port", str(sim_port),
         "--api-key", SIM_KEY, "--api-secret", SIM_SECRET, "--paused",
         "--weight-limit", "10000000", "--order-limit-10s", "10000000"],
    )  # fmt: skip
    stack.start("web", web_argv("127.0.0.1", web_port))
    for name, argv in worker_argvs().items():
        stack.start(name, argv)
    stack.start("venuestream", [py, "-m", "omsweb.cli", "venuestream"])
    try:
        wait_http(stack.sim + "/sim/health")
        wait_http(stack.web + "/healthz")
        api = stack.api()
        wait_for(
            lambda: api.get("/api/v1/health/").json().get("status") == "up",
            timeout=60,
            interval=0.5,
        )
    except Exception:
        logs = stack.logs()
        for p in stack.procs.values():
            p.stop()
        raise RuntimeError(f"stack did not start:\n{logs}") from None
    yield stack
    for proc in reversed(list(stack.procs.values())):
        proc.stop()


def _prepare_data(sim_port: int) -> str:
    from django.contrib.auth.models import Group, User
    from rest_framework.authtoken.models import Token

    from omsweb.demo import ensure_reference_data
    from orders.models import Account
    from venues.models import Venue

    ensure_reference_data()
    Venue.objects.filter(name="sim-a").update(base_url=f"http://127.0.0.1:{sim_port}", enabled=True)
    Venue.objects.exclude(name="sim-a").update(enabled=False)
    user, _ = User.objects.get_or_create(username="sys-trader")
    user.groups.add(Group.objects.get(name="trader"))
    for code in ("DEMO", "HEDGE"):
        Account.objects.get(code=code).members.add(user)
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def order_status(api: Api, order_id: int, *statuses: str):
    """A predicate for wait_for: the order once it has one of ``statuses``."""

    def check():
        body = api.get(f"/api/v1/orders/{order_id}/").json()
        return body if body["status"] in statuses else None

    return check
