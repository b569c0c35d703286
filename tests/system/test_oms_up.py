"""``oms up`` as a newcomer runs it: its own embedded PostgreSQL and Redis, every process
under supervisord, and Ctrl-C (SIGINT to its process group, as a terminal sends it)
stops all of it, leaving no process behind (issue 12, item 1)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from omsweb import embedded, procmgr
from omsweb.stack import free_port
from tests.conftest import ROOT
from tests.system.conftest import wait_for

pytestmark = pytest.mark.system


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_oms_up_then_ctrl_c_stops_every_process_and_its_embedded_services():
    # Arrange: a fresh OMS_HOME (mkdtemp, like the test run's own: the embedded
    # PostgreSQL's system user must reach it) and no DATABASE_URL/REDIS_URL
    home = Path(tempfile.mkdtemp(prefix="oms-up-")) / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        OMS_HOME=str(home),
        OMS_WEB_PORT=str(free_port()),
        OMS_FIX_PORT=str(free_port()),
        PYTHONPATH=str(ROOT),
    )
    log = home.parent / "oms-up.log"
    with log.open("ab") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "omsweb.cli", "up", "--no-sim"],
            env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        names = ["web", "worker-orders", "worker-urgent", "worker-recon"]
        procmgr.wait_running(home, names, timeout=180)
        tree = [psutil.Process(up.pid), *psutil.Process(up.pid).children(recursive=True)]
        services = [
            int((home / "redis" / "redis.pid").read_text()),
            int((home / "pg" / "postmaster.pid").read_text().split()[0]),
        ]
        assert all(_alive(pid) for pid in services)
        # Act: Ctrl-C
        os.killpg(up.pid, signal.SIGINT)
        code = up.wait(90)
        # Assert
        assert code == 0, log.read_text()[-3000:]
        wait_for(lambda: not [p.pid for p in tree if _alive(p.pid)], timeout=20)
        assert not [pid for pid in services if _alive(pid)]
        assert "embedded PostgreSQL and Redis stopped" in log.read_text()
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
        embedded.stop_services(home)  # if the test failed half-way
        shutil.rmtree(home.parent, ignore_errors=True)
