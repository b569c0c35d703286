"""``bench/cpu.py``: CPU seconds per process role (children included) and the round
trips of a block, against real processes, a real database and a real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cpu

pytestmark = pytest.mark.skipif(not cpu.available(), reason="needs /proc (Linux)")

# Burns 0.3 s of its own CPU (whatever the machine's load), says so in a file, then
# waits to be stopped; with an argument, first starts a child that does the same.
BURNER = """
import subprocess, sys, time
from pathlib import Path
child = None
if len(sys.argv) > 2:
    child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2] + ".child"])
    Path(sys.argv[2] + ".pid").write_text(str(child.pid))
while time.process_time() < 0.3:
    pass
Path(sys.argv[-1] if child is None else sys.argv[2]).write_text("done")
time.sleep(60)
"""


def _wait_files(*paths: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"burners did not finish: {paths}"
        time.sleep(0.05)


def test_cpu_of_a_role_includes_its_childrens(tmp_path):
    done = tmp_path / "burn"
    parent = subprocess.Popen([sys.executable, "-c", BURNER, BURNER, str(done)])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        meter = cpu.CpuMeter({"burner": [parent.pid], "idle": [idle.pid], "gone": [2**22 + 7]})
        meter.start()
        _wait_files(done, Path(str(done) + ".child"))
        used = meter.stop()
    finally:
        for proc in (parent, idle):
            proc.kill()
            proc.wait(10)
        pid_path = Path(str(done) + ".pid")
        if pid_path.exists():  # the grandchild: stopped by its pid
            os.kill(int(pid_path.read_text()), signal.SIGKILL)
    # two processes, 0.3 s each (less whatever the parent burned before start())
    assert used["burner"] >= 0.45
    assert used["idle"] < 0.1
    assert used["gone"] == 0.0


def test_per_order_figures():
    out = cpu.per_order({"web": 0.9, "postgres": 0.3}, 100)
    assert out["burst_cpu_ms_per_order_web"] == 9.0
    assert out["burst_cpu_ms_per_order_postgres"] == 3.0
    assert out["burst_cpu_ms_per_order_total"] == 12.0
    import os

    assert out["orders_per_s_cpu_bound"] == round((os.cpu_count() or 1) * 1000 / 12.0, 1)
    assert cpu.per_order({"web": 1.0}, 0) == {}


def test_pid_file_reads_the_first_line(tmp_path):
    (tmp_path / "postmaster.pid").write_text("4242\n/data\n")
    assert cpu.pid_file(tmp_path / "postmaster.pid") == 4242
    assert cpu.pid_file(tmp_path / "missing.pid") is None


@pytest.mark.django_db
def test_round_trips_count_statements_and_redis_round_trips():
    from django.db import connection

    from omsweb.redis_client import client

    r = client()
    r.ping()  # connected before counting
    with cpu.round_trips() as counts:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.execute("SELECT 2")
        r.get("bench:cpu:nothing")
        with r.pipeline(transaction=False) as pipe:  # one round trip for both
            pipe.get("bench:cpu:a")
            pipe.get("bench:cpu:b")
            pipe.execute()
    assert counts == {"db": 2, "redis": 2}
    # the counting is undone
    with cpu.round_trips() as again:
        pass
    assert again == {"db": 0, "redis": 0}
