"""The process manager: supervisord runs the OMS's processes and restarts one that dies.

``oms up`` writes a supervisord configuration under ``OMS_HOME`` from the process table
(``omsweb.cli.processes``: name -> argv) and runs supervisord in the foreground. Why
supervisor (not circus): pure Python with no ZeroMQ or Tornado underneath, decades of
production use, the restart-with-backoff policy built in, and every process's state
readable over XML-RPC on a unix socket (``OMS_HOME/supervisor.sock``), which the health
check and the blotter read (``states``). ``supervisorctl -c OMS_HOME/supervisord.conf
status`` shows the same.

Restart policy (supervisord's own, the same for every program):

* ``autorestart=true``: whatever ends a process (a crash, SIGKILL, a Celery worker that
  leaves after a broker error, even exit code 0) it is started again.
* ``startsecs``: a process must stay up that long to count as started (RUNNING). One
  that dies sooner goes to BACKOFF and is tried again after 1, 2, 3... s (supervisord
  waits one second more per attempt), up to ``startretries`` times, then FATAL: it
  stays down until an operator starts it (``supervisorctl start NAME``). A process that
  ran longer than ``startsecs`` and then died is restarted at once.
* Stopping sends SIGTERM to the process (uvicorn and Celery stop their own children
  cleanly) and SIGKILL to its whole process group after ``stopwaitsecs``.

The event listener ``alerts`` (``python -m omsweb.procmgr listen``) turns every exit
supervisord restarts after into the alert ``process_restart`` (``omsweb/alerts.py``)
and counts it in ``/metrics``; a process that gave up is ``process_fatal``.

Nothing here imports Django: the listener runs without it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

START_SECS = 3  # up this long = started; a quicker death is a failed start (BACKOFF)
START_RETRIES = 10  # failed starts in a row before FATAL
STOP_WAIT_SECS = 15  # SIGTERM, then this long, then SIGKILL to the process group
LISTENER = "alerts"  # the event listener's name in supervisord


def config_path(home: Path) -> Path:
    return home / "supervisord.conf"


def socket_path(home: Path) -> Path:
    return home / "supervisor.sock"


def metrics_dir(home: Path) -> Path:
    """Prometheus' multi-process directory of the processes of ``home``
    (``PROMETHEUS_MULTIPROC_DIR``; ``omsweb/settings.py`` sets it, ``oms up`` empties it)."""
    return home / "metrics"


def _command(argv: list[str]) -> str:
    # supervisord expands %(name)s in values: a literal % (Celery's -n name@%h) is %%
    return shlex.join(argv).replace("%", "%%")


def write_config(
    home: Path,
    programs: dict[str, list[str]],
    *,
    directory: Path,
    start_retries: int = START_RETRIES,
) -> Path:
    """supervisord's configuration for ``programs`` (name -> argv), run from
    ``directory``; every process writes to supervisord's own stdout. The environment is
    supervisord's, inherited by every program (so no secret is written to the file)."""
    metrics_dir(home).mkdir(parents=True, exist_ok=True)
    py = shlex.quote(sys.executable)
    sections = [
        f"""[supervisord]
nodaemon=true
logfile={home / "supervisord.log"}
logfile_maxbytes=10MB
logfile_backups=2
pidfile={home / "supervisord.pid"}
childlogdir={home}

[unix_http_server]
file={socket_path(home)}
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{socket_path(home)}

[eventlistener:{LISTENER}]
command={py} -m omsweb.procmgr listen
directory={directory}
events=PROCESS_STATE_EXITED,PROCESS_STATE_BACKOFF,PROCESS_STATE_FATAL
buffer_size=1000
environment=PROMETHEUS_MULTIPROC_DIR="{metrics_dir(home)}"
autorestart=true
stderr_logfile=/dev/stdout
stderr_logfile_maxbytes=0
"""
    ]
    for name, argv in programs.items():
        if not name.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"process name {name!r}: letters, digits, - and _ only")
        sections.append(
            f"""[program:{name}]
command={_command(argv)}
directory={directory}
autorestart=true
startsecs={START_SECS}
startretries={start_retries}
stopsignal=TERM
stopwaitsecs={STOP_WAIT_SECS}
killasgroup=true
redirect_stderr=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
"""
        )
    path = config_path(home)
    path.write_text("\n".join(sections))
    path.chmod(0o600)
    return path


def supervisord_argv(config: Path) -> list[str]:
    return [sys.executable, "-m", "supervisor.supervisord", "-c", str(config)]


def rpc(home: Path, timeout: float = 2.0) -> Any:
    """An XML-RPC proxy to the supervisord of ``home`` (over its unix socket)."""
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_path(home)}")
    transport.timeout = timeout  # type: ignore[attr-defined]
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


def states(home: Path) -> dict[str, dict[str, Any]] | None:
    """Each supervised process: ``{"state", "pid", "uptime_s", "detail"}``; None when no
    supervisord runs for ``home`` (processes started some other way)."""
    if not socket_path(home).exists():
        return None
    try:
        infos = rpc(home).supervisor.getAllProcessInfo()
    except (OSError, xmlrpc.client.Error):
        return None
    out = {}
    for info in infos:
        running = info["statename"] == "RUNNING"
        out[info["name"]] = {
            "state": info["statename"],
            "pid": info["pid"] or None,
            "uptime_s": max(0, info["now"] - info["start"]) if running else None,
            "detail": info["spawnerr"] or info["description"],
        }
    return dict(sorted(out.items()))


def stop(home: Path, pid: int, timeout: float = STOP_WAIT_SECS + 10) -> None:
    """Stop supervisord ``pid`` and everything it runs: SIGTERM makes it stop each
    program (SIGTERM, then SIGKILL to its group after ``stopwaitsecs``) and exit."""
    import signal

    import psutil

    try:
        proc = psutil.Process(pid)
        os.kill(pid, signal.SIGTERM)
        proc.wait(timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        # A slow stop (a loaded machine): kill what is left. Any of them may finish by
        # itself between the listing and the kill, which is what we want anyway.
        for victim in [*proc.children(recursive=True), proc]:
            with contextlib.suppress(psutil.NoSuchProcess):
                victim.kill()


# --- the event listener ------------------------------------------------------------------


def handle_event(headers: dict[str, str], payload: dict[str, str]) -> str | None:
    """Log and count one PROCESS_STATE event; returns the alert raised, if any."""
    from omsweb import alerts, metrics

    name = payload.get("processname", "?")
    event = headers.get("eventname", "")
    if name == LISTENER:
        return None
    if event == "PROCESS_STATE_EXITED":
        # every exit is restarted (autorestart=true); ``expected`` says the exit code was 0
        metrics.PROCESS_RESTARTS.labels(process=name).inc()
        alerts.alert(
            alerts.PROCESS_RESTART,
            process=name,
            pid=payload.get("pid", ""),
            expected=payload.get("expected", ""),
        )
        return alerts.PROCESS_RESTART
    if event == "PROCESS_STATE_BACKOFF":
        # died within startsecs of a start; tried again after a growing pause
        metrics.PROCESS_RESTARTS.labels(process=name).inc()
        alerts.alert(alerts.PROCESS_RESTART, process=name, failed_start=payload.get("tries", ""))
        return alerts.PROCESS_RESTART
    if event == "PROCESS_STATE_FATAL":
        alerts.alert(alerts.PROCESS_FATAL, process=name)
        return alerts.PROCESS_FATAL
    return None


def listen() -> None:
    """supervisord's event listener protocol on stdin/stdout; logs go to stderr."""
    from supervisor import childutils

    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    while True:
        headers, body = childutils.listener.wait(sys.stdin, sys.stdout)
        try:
            handle_event(headers, childutils.get_headers(body.split("\n", 1)[0]))
        except Exception:  # one bad event must not stop the listener
            log.exception("process event %s not handled", headers.get("eventname"))
        childutils.listener.ok(sys.stdout)


def wait_running(home: Path, names: list[str], timeout: float = 60.0) -> dict[str, Any]:
    """Poll until every process of ``names`` is RUNNING; their states (for tests)."""
    deadline = time.monotonic() + timeout
    current: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        current = states(home)
        if current and all(current.get(n, {}).get("state") == "RUNNING" for n in names):
            return current
        time.sleep(0.2)
    raise TimeoutError(f"not all of {names} RUNNING within {timeout}s: {current}")


if __name__ == "__main__":  # python -m omsweb.procmgr listen
    if sys.argv[1:] == ["listen"]:
        listen()
    else:
        raise SystemExit("usage: python -m omsweb.procmgr listen")
