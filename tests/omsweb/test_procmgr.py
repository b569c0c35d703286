"""The process manager (omsweb/procmgr.py): a real supervisord from the generated
configuration, restarting what dies, with alerts, counts, health and a clean stop."""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from omsweb import procmgr
from tests.conftest import ROOT, Proc, wait_for


def test_config_when_argv_has_percent_then_escaped_and_bad_names_refused(tmp_path):
    conf = procmgr.write_config(
        tmp_path, {"worker-orders": ["celery", "-n", "orders@%h"]}, directory=ROOT
    )
    text = conf.read_text()
    assert "command=celery -n orders@%%h" in text
    assert "autorestart=true" in text and f"startsecs={procmgr.START_SECS}" in text
    assert oct(conf.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(ValueError, match="process name"):
        procmgr.write_config(tmp_path, {"web server": ["x"]}, directory=ROOT)


def test_states_when_no_supervisord_then_none(tmp_path):
    assert procmgr.states(tmp_path) is None


@pytest.fixture
def supervised(tmp_path):
    """supervisord running a long sleeper and a program that exits at once (one retry),
    stopped afterwards; yields (home, supervisord Proc)."""
    programs = {
        "sleeper": ["sleep", "300"],
        "crasher": [sys.executable, "-c", "import sys; sys.exit(3)"],
    }
    conf = procmgr.write_config(tmp_path, programs, directory=ROOT, start_retries=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = Proc(procmgr.supervisord_argv(conf), env, tmp_path / "supervisord.out")
    yield tmp_path, proc
    procmgr.stop(tmp_path, proc.pid)
    proc.stop()


def _process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def test_killed_process_then_restarted_with_alert_and_count_and_stop_leaves_nothing(
    supervised,
):
    home, supervisor = supervised
    # Arrange
    first = procmgr.wait_running(home, ["sleeper"], timeout=30)["sleeper"]["pid"]
    # Act: a crash
    os.kill(first, signal.SIGKILL)
    seen: set[str] = set()

    def back() -> dict | None:
        state = (procmgr.states(home) or {}).get("sleeper", {})
        seen.add(state.get("state", ""))
        return state if state.get("state") == "RUNNING" and state["pid"] != first else None

    again = wait_for(back, timeout=30, interval=0.1)
    # Assert: restarted, seen restarting, alerted and counted
    assert again["pid"] != first
    assert "STARTING" in seen  # must stay up startsecs before it counts as RUNNING
    wait_for(lambda: "process=sleeper" in supervisor.tail(200), timeout=10)
    log = supervisor.tail(200)
    assert "WARNING oms.alerts: event=process_restart process=sleeper" in log
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(procmgr.metrics_dir(home)))
    assert registry.get_sample_value("oms_process_restarts_total", {"process": "sleeper"}) == 1

    # Act: stop (what Ctrl-C of `oms up` does)
    tree = _process_tree(supervisor.pid)
    assert len(tree) >= 3  # supervisord, the sleeper, the listener
    procmgr.stop(home, supervisor.pid)
    # Assert: nothing left
    time.sleep(0.2)
    assert [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []


def test_process_that_keeps_failing_to_start_then_backoff_then_fatal_alert(supervised):
    home, supervisor = supervised
    seen: set[str] = set()

    def fatal() -> bool:
        state = (procmgr.states(home) or {}).get("crasher", {}).get("state", "")
        seen.add(state)
        return state == "FATAL"

    wait_for(fatal, timeout=30, interval=0.1)
    assert "BACKOFF" in seen
    wait_for(lambda: "event=process_fatal process=crasher" in supervisor.tail(200), timeout=10)
    assert "event=process_restart process=crasher failed_start=" in supervisor.tail(200)


@pytest.mark.django_db
def test_health_when_a_process_is_not_running_then_degraded_and_listed(supervised, settings):
    from omsweb.health import health_report

    home, _ = supervised
    settings.OMS_HOME = home
    procmgr.wait_running(home, ["sleeper"], timeout=30)
    wait_for(lambda: procmgr.states(home)["crasher"]["state"] == "FATAL", timeout=30)
    # Act
    report = health_report()
    # Assert
    assert report["status"] == "degraded"
    assert report["processes"]["sleeper"]["state"] == "RUNNING"
    assert report["processes"]["sleeper"]["uptime_s"] >= 0
    assert report["processes"]["crasher"]["state"] == "FATAL"


def test_blotter_tick_when_supervised_then_lists_processes_else_none(supervised, settings):
    from blotter.consumer import _tick

    home, _ = supervised
    procmgr.wait_running(home, ["sleeper"], timeout=30)
    # Act
    unsupervised = _tick([], [], [])["processes"]
    settings.OMS_HOME = home
    tick = _tick([], [], [])
    # Assert
    assert unsupervised is None
    assert tick["processes"]["sleeper"]["state"] == "RUNNING"
    assert set(tick["processes"]) == {"alerts", "crasher", "sleeper"}


def test_stop_when_slow_and_a_child_ends_during_the_kill_then_no_error(tmp_path, monkeypatch):
    # Arrange: a "supervisord" that ignores SIGTERM (a stop slower than the timeout), with
    # one child that ends by itself between the listing and its kill (a loaded machine)
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "time.sleep(60)\n"
    )
    parent = Proc([sys.executable, "-c", script], env=dict(os.environ), log=tmp_path / "p.log")
    child = wait_for(lambda: psutil.Process(parent.pid).children(), timeout=10)[0]
    real_kill = psutil.Process.kill

    def kill(self):
        real_kill(self)
        if self.pid == child.pid:  # what psutil raises when the pid is already gone
            raise psutil.NoSuchProcess(self.pid)

    monkeypatch.setattr(psutil.Process, "kill", kill)
    # Act
    procmgr.stop(tmp_path, parent.pid, timeout=0.5)
    # Assert: the parent was killed after its child's disappearance
    wait_for(lambda: not parent.alive(), timeout=10)
