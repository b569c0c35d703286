"""Start the whole OMS as real processes for system tests and benchmarks.

A ``Stack`` runs a simulated exchange, the ASGI web server, one Celery worker per queue
group (with beat) and the venue stream, all against one database and Redis given in
``env``. Processes it starts are stopped by their PID only.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
SIM_KEY = "stack-sim-key"
SIM_SECRET = "stack-sim-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up: {last}")


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail with the last one."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")


class Proc:
    """A process we started; stopped by its PID only."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv = argv
        self.env = env
        self.log = log
        self._fh = log.open("ab")
        self.popen = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=self._fh, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        self._fh.close()

    def kill(self) -> None:
        """SIGKILL: a crash, for fault tests."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)

    def tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


class Api:
    """A small REST client for the OMS API."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Token {token}"

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, timeout=10, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.session.post(self.base + path, json=json, timeout=10, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> requests.Response:
        return self.session.patch(self.base + path, json=json, timeout=10, **kw)


@dataclass
class Stack:
    web: str
    sim: str
    token: str
    env: dict[str, str]
    logdir: Path
    sim_argv: list[str] = field(default_factory=list)
    procs: dict[str, Proc] = field(default_factory=dict)

    def api(self) -> Api:
        return Api(self.web, self.token)

    def sim_post(self, path: str, body: dict[str, Any]) -> Any:
        r = requests.post(self.sim + path, json=body, timeout=10)
        r.raise_for_status()
        return r.json()

    def sim_get(self, path: str, **params: Any) -> Any:
        r = requests.get(self.sim + path, params=params, timeout=10)
        r.raise_for_status()
        return r.json()

    def logs(self, n: int = 25) -> str:
        return "\n".join(f"--- {name}\n{p.tail(n)}" for name, p in self.procs.items())

    def start(self, name: str, argv: list[str]) -> Proc:
        proc = Proc(argv, self.env, self.logdir / f"{name}.log")
        self.procs[name] = proc
        return proc

    def restart(self, name: str) -> Proc:
        old = self.procs[name]
        old.stop()
        return self.start(name, old.argv)

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()

    def market_data_state(self, venue: str = "sim-a", symbol: str = "BTC/USDT") -> str | None:
        """The venue's market-data state for ``symbol`` as the API reports it."""
        body = self.api().get("/api/v1/marketdata/").json()
        for row in body.get("symbols", []):
            if row["symbol"] == symbol:
                for v in row["venues"]:
                    if v["venue"] == venue:
                        return str(v["state"])
        return None

    def wait_healthy(self, timeout: float = 60.0) -> None:
        wait_http(self.sim + "/sim/health")
        wait_http(self.web + "/healthz")
        api = self.api()
        wait_for(
            lambda: api.get("/api/v1/health/").json().get("status") == "up",
            timeout=timeout,
            interval=0.3,
        )


def worker_argvs(suffix: str = "stack") -> dict[str, list[str]]:
    from omsweb.cli import WORKERS, worker_argv

    return {
        f"worker-{name}": worker_argv(queues, name=f"{name}-{suffix}", concurrency=c, beat=beat)
        for name, (queues, c, beat) in WORKERS.items()
    }


def _beat_schedule_in(argv: list[str], logdir: Path) -> list[str]:
    """Beat's schedule file in the stack's own directory: ``worker_argv`` puts it under
    the *calling* process's OMS_HOME, which two stacks of one test run would share."""
    if "-s" not in argv:
        return argv
    argv = list(argv)
    argv[argv.index("-s") + 1] = str(logdir / "celerybeat-schedule")
    return argv


def prepare_data(sim_port: int, username: str = "stack-trader") -> str:
    """Reference data, the venue row pointed at our simulator, a trader's API token.
    Needs Django set up against the stack's database."""
    from django.contrib.auth.models import Group, User

    from omsweb import api_tokens
    from omsweb.demo import ensure_reference_data
    from orders.models import Account
    from venues.credentials import env_name
    from venues.models import Venue

    ensure_reference_data()
    Venue.objects.filter(name="sim-a").update(
        base_url=f"http://127.0.0.1:{sim_port}", enabled=True,
        api_key_env=env_name("sim-a", "api_key_env"), secret_env=env_name("sim-a", "secret_env"),
        # the stack's simulator runs with huge limits; so do we (benchmarks, bursts)
        rate_limits={"weight": [10_000_000, 60], "orders": [10_000_000, 10]},
    )  # fmt: skip
    Venue.objects.exclude(name="sim-a").update(enabled=False)
    user, _ = User.objects.get_or_create(username=username)
    user.groups.add(Group.objects.get(name="trader"))
    for code in ("DEMO", "HEDGE"):
        Account.objects.get(code=code).members.add(user)
    return api_tokens.issue(user=user, source="stack")


def sim_credentials_env() -> dict[str, str]:
    """The variables that give venue sim-a the stack simulator's key (its own
    ``OMS_VENUE_SIM_A_KEY`` / ``_SECRET``: venues/credentials.py)."""
    from venues.credentials import env_name

    return {
        env_name("sim-a", "api_key_env"): SIM_KEY,
        env_name("sim-a", "secret_env"): SIM_SECRET,
    }


def sim_argv(sim_port: int, sim_args: tuple[str, ...] = ("--paused",)) -> list[str]:
    """The stack's simulated exchange sim-a (huge rate limits, the stack's API key)."""
    return [
        sys.executable, "-m", "venues.sim", "--name", "sim-a", "--port", str(sim_port),
        "--api-key", SIM_KEY, "--api-secret", SIM_SECRET,
        "--weight-limit", "10000000", "--order-limit-10s", "10000000", *sim_args,
    ]  # fmt: skip


def launch(
    env: dict[str, str],
    logdir: Path,
    *,
    token: str,
    sim_port: int,
    sim_args: tuple[str, ...] = ("--paused",),
    healthy_timeout: float = 60.0,
) -> Stack:
    """Start every process and wait until the health check reports all queues up."""
    from omsweb.cli import web_argv

    env = {**env, **sim_credentials_env()}
    env.setdefault("PYTHONPATH", str(ROOT))
    web_port = free_port()
    py = sys.executable
    stack = Stack(
        web=f"http://127.0.0.1:{web_port}",
        sim=f"http://127.0.0.1:{sim_port}",
        token=token,
        env=env,
        logdir=logdir,
    )
    stack.sim_argv = sim_argv(sim_port, sim_args)
    stack.start("sim-a", stack.sim_argv)
    stack.start("web", web_argv("127.0.0.1", web_port))
    for name, argv in worker_argvs().items():
        stack.start(name, _beat_schedule_in(argv, logdir))
    stack.start("venuestream", [py, "-m", "omsweb.cli", "venuestream"])
    stack.start("marketdata", [py, "-m", "omsweb.cli", "marketdata"])
    try:
        stack.wait_healthy(healthy_timeout)
        for symbol in ("BTC/USDT", "ETH/USDT"):  # risk needs a LIVE reference
            wait_for(lambda s=symbol: stack.market_data_state("sim-a", s) == "LIVE", timeout=90)
    except Exception as exc:
        logs = stack.logs()
        stack.stop()
        raise RuntimeError(f"stack did not start ({exc!r}):\n{logs}") from None
    return stack


def create_database(database_url: str, name: str) -> str:
    """(Re)create database ``name`` on the server of ``database_url``, migrate it, and
    return its URL. The stack gets a database of its own, so nothing else (a test's
    flush, say) can pull rows from under its running processes."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    parts = urlsplit(database_url)
    admin_url = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(parts._replace(path=f"/{name}"))
    return url


def _libpq(url: str) -> str:
    """dj-database-url style (socket dir percent-encoded as host) to a libpq conninfo."""
    import dj_database_url

    cfg = dj_database_url.parse(url)
    bits = {
        "dbname": cfg["NAME"],
        "user": cfg.get("USER") or "",
        "password": cfg.get("PASSWORD") or "",
        "host": cfg.get("HOST") or "",
        "port": str(cfg.get("PORT") or ""),
    }
    return " ".join(f"{k}='{v}'" for k, v in bits.items() if v)


def setup_database(env: dict[str, str], sim_port: int, username: str) -> str:
    """Migrate the stack's database and load its data in a subprocess; return the token."""
    py = sys.executable
    subprocess.run(
        [py, "manage.py", "migrate", "--noinput", "-v", "0"], env=env, cwd=ROOT, check=True
    )
    out = subprocess.run(
        [py, "-m", "omsweb.stack", "prepare", str(sim_port), username],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def _with_redis_db(url: str, db: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    return urlunsplit(urlsplit(url)._replace(path=f"/{db}"))


def isolated_env(base_env: dict[str, str], *, db_name: str, redis_db: int) -> dict[str, str]:
    """A copy of ``base_env`` pointing at a fresh database and Redis db of the stack's own."""
    env = dict(base_env)
    env["DATABASE_URL"] = create_database(base_env["DATABASE_URL"], db_name)
    env["REDIS_URL"] = _with_redis_db(base_env["REDIS_URL"], redis_db)
    import redis

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    env.setdefault("PYTHONPATH", str(ROOT))
    return env


if __name__ == "__main__":  # python -m omsweb.stack prepare SIM_PORT USERNAME
    import django

    django.setup()
    if sys.argv[1] == "prepare":
        print(prepare_data(int(sys.argv[2]), username=sys.argv[3]))
