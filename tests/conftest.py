"""Shared fixtures: reference data, users with roles and tokens, a real web server."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path

import pytest

from omsweb.stack import Api, Proc, free_port, wait_for, wait_http  # noqa: F401 - re-exported

ROOT = Path(__file__).resolve().parent.parent


def test_database_env() -> dict[str, str]:
    """The environment a subprocess needs to use the test database."""
    from django.db import connection

    s = connection.settings_dict
    from urllib.parse import quote

    host = quote(s["HOST"] or "", safe="")
    port = f":{s['PORT']}" if s.get("PORT") else ""
    password = f":{quote(s['PASSWORD'])}" if s.get("PASSWORD") else ""
    url = f"postgres://{s['USER']}{password}@{host}{port}/{s['NAME']}"
    env = dict(os.environ)
    env["DATABASE_URL"] = url
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="session")
def web_server(django_db_setup, django_db_blocker, tmp_path_factory):
    """uvicorn serving the OMS on a free port, against the test database."""
    with django_db_blocker.unblock():
        env = test_database_env()
    port = free_port()
    log = tmp_path_factory.mktemp("web") / "web.log"
    from omsweb.cli import web_argv

    proc = Proc(web_argv("127.0.0.1", port), env, log)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz")
    except RuntimeError:
        proc.stop()
        raise RuntimeError(proc.tail()) from None
    yield f"http://127.0.0.1:{port}"
    proc.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """The whole OMS as real processes (``omsweb/stack.py``) on a database and Redis db
    of its own, started once per session and shared by tests/system and tests/browser."""
    from omsweb import stack as stack_mod

    logdir = tmp_path_factory.mktemp("stack")
    sim_port = free_port()
    redis_db = int(os.environ.get("OMS_TEST_REDIS_DB", "15")) - 2
    env = stack_mod.isolated_env(dict(os.environ), db_name="test_oms_stack", redis_db=redis_db)
    env.update(OMS_HOME=str(logdir), OMS_LOG_LEVEL="INFO")
    token = stack_mod.setup_database(env, sim_port, "sys-trader")
    running = stack_mod.launch(env, logdir, token=token, sim_port=sim_port)
    yield running
    running.stop()


@pytest.fixture
def refdata(transactional_db):
    from omsweb.demo import ensure_reference_data

    ensure_reference_data()


@pytest.fixture
def users(refdata):
    """admin, risk, trader (member of DEMO), outsider (member of HEDGE): tokens by name."""
    from django.contrib.auth.models import Group, User

    from omsweb import api_tokens
    from orders.models import Account

    tokens = {}
    for name, role in (
        ("admin", "admin"),
        ("risk", "risk"),
        ("trader", "trader"),
        ("outsider", "trader"),
    ):
        user = User.objects.create_user(
            username=name, password=f"{name}-pw-123", is_superuser=name == "admin"
        )
        user.groups.add(Group.objects.get(name=role))
        tokens[name] = api_tokens.issue(user=user, source="test")
    Account.objects.get(code="DEMO").members.add(User.objects.get(username="trader"))
    Account.objects.get(code="HEDGE").members.add(User.objects.get(username="outsider"))
    return tokens


@pytest.fixture
def api(web_server, users):
    """``api("trader").post(...)``: a real HTTP client authenticated as that user."""

    def make(user: str | None = "trader") -> Api:
        return Api(web_server, users[user] if user else None)

    return make


def limit_order(**overrides) -> dict:
    body = {
        "account": "DEMO",
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.01",
        "price": "50000.00",
        "venue": "sim-a",  # a direct order (without a venue it is a parent: tests/routing)
    }
    body.update(overrides)
    return body


D = Decimal
