"""OMS_HOME is private to its owner and the embedded Redis requires a password (issue 13,
item 1: a local process with no OMS credentials talked to the embedded Redis, whose data
files were world-readable).

The services test starts a real embedded PostgreSQL and Redis in a fresh OMS_HOME, as
whoever runs the tests: as root, pgserver runs PostgreSQL as its own system user, which
must still reach its data folder through OMS_HOME (a 0700 OMS_HOME broke start and stop).
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from omsweb import embedded

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _open_to_others(home: Path) -> list[str]:
    """Paths under ``home`` (PostgreSQL's data folder aside) that others may list or read
    (folders: more than ``home_mode()``; files: any group or other bit)."""
    found = []
    for root, dirs, files in os.walk(home):
        if Path(root) == home and embedded.PG_DIR in dirs:
            dirs.remove(embedded.PG_DIR)
        for name in dirs + files:
            path = Path(root, name)
            allowed = embedded.home_mode() & 0o077 if path.is_dir() else 0
            if not path.is_symlink() and _mode(path) & 0o077 & ~allowed:
                found.append(f"{path.relative_to(home)} {oct(_mode(path))}")
    return found


def _exits(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while embedded._pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_make_private_when_files_are_world_readable_then_owner_only(tmp_path):
    home = tmp_path / "oms"
    (home / "redis").mkdir(parents=True)
    dump = home / "redis" / "appendonly.aof"
    dump.write_text("secret")
    dump.chmod(0o644)
    (home / "redis").chmod(0o755)
    (home / "pg").mkdir()
    (home / "pg").chmod(0o750)
    nested_pg = home / "bench" / "run-1" / "services" / "pg"  # the benchmark's services
    nested_pg.mkdir(parents=True)
    nested_pg.chmod(0o750)
    (nested_pg / "PG_VERSION").write_text("18")
    (nested_pg / "PG_VERSION").chmod(0o644)
    home.chmod(0o755)
    # Act
    embedded.make_private(home)
    # Assert
    assert _mode(home) == embedded.home_mode()
    assert _mode(home / "redis") == embedded.home_mode()
    assert _mode(home / "bench" / "run-1") == embedded.home_mode()
    assert _mode(dump) == 0o600
    # PostgreSQL's, left as it keeps them
    assert _mode(home / "pg") == 0o750
    assert _mode(nested_pg / "PG_VERSION") == 0o644
    # and what is written later is private too (the process umask)
    later = home / "later.log"
    later.write_text("x")
    assert _mode(later) == 0o600


def test_home_mode_when_root_then_traversable_only_else_owner_only():
    expected = 0o711 if os.geteuid() == 0 else 0o700
    assert embedded.home_mode() == expected
    assert embedded.home_mode() & 0o044 == 0  # nobody else lists or reads it


def test_secret_file_when_first_used_then_generated_private_and_stable(tmp_path):
    path = tmp_path / "task_key"
    first = embedded.secret_file(path)
    assert len(first) >= 50
    assert _mode(path) == 0o600
    assert embedded.secret_file(path) == first
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def _oms_services(home: Path, *args: str) -> str:
    """``oms services [--stop]`` as an operator runs it: its own process, no *_URL set."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["OMS_HOME"] = str(home)
    out = subprocess.run(
        [sys.executable, "-m", "omsweb.cli", "services", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def _redis_url(stdout: str) -> str:
    return next(
        line.split("=", 1)[1] for line in stdout.splitlines() if line.startswith("REDIS_URL=")
    )


def test_oms_services_when_started_then_private_password_required_and_stop_start_work(tmp_path):
    home = tmp_path / "home"
    try:
        # Act: start from nothing
        url = _redis_url(_oms_services(home))
        # Assert: the broker takes the password, and only the password
        assert redis.Redis.from_url(url).ping()
        port = redis.Redis.from_url(url).connection_pool.connection_kwargs["port"]
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=port, password="guess").ping()
        # Assert: owner only, PostgreSQL's data folder its own user's; the folder above
        # (0700, which pgserver opens as root) can be passed through, not listed
        assert _mode(home) == embedded.home_mode()
        assert _open_to_others(home) == []
        assert _mode(tmp_path) == embedded.home_mode()
        for name in ("redis_password", "redis/redis.conf", "redis/redis.log", "simex.json"):
            assert _mode(home / name) == 0o600, name
        pg = home / embedded.PG_DIR
        assert _mode(pg) == 0o700
        if os.geteuid() == 0:
            assert pwd.getpwuid(pg.stat().st_uid).pw_name == "pgserver"
        pg_pid = int((pg / "postmaster.pid").read_text().split()[0])
        redis_pid = int((home / "redis" / "redis.pid").read_text())

        # Act: stop
        _oms_services(home, "--stop")
        # Assert: both really stopped, OMS_HOME still private
        assert _exits(pg_pid), "the postmaster outlived `oms services --stop`"
        assert _exits(redis_pid)
        assert _mode(home) == embedded.home_mode()
        assert _mode(tmp_path) == embedded.home_mode()

        # Act: start again on the same data
        again = _redis_url(_oms_services(home))
        # Assert
        assert again == url
        assert redis.Redis.from_url(url).ping()
        assert embedded.running(home)
        assert _mode(home) == embedded.home_mode()
        assert _open_to_others(home) == []
    finally:
        _oms_services(home, "--stop")
    assert not embedded.running(home)


def test_ensure_redis_when_running_without_password_then_restarted_with_it(tmp_path):
    home = tmp_path / "home"
    url = embedded.ensure_services(home, database=False).redis_url or ""
    try:
        client = redis.Redis.from_url(url)
        port = client.connection_pool.connection_kwargs["port"]
        client.config_set("requirepass", "")  # as a server started before passwords
        assert redis.Redis(host="127.0.0.1", port=port).ping()
        # Act
        again = embedded.ensure_redis(home)
        # Assert
        assert redis.Redis.from_url(again).ping()
        new_port = redis.Redis.from_url(again).connection_pool.connection_kwargs["port"]
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=new_port).ping()
    finally:
        embedded.stop_services(home)
