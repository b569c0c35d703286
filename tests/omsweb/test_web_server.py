"""The web server: Django's HTTP side through ``OmsASGIHandler`` (one thread hop per
request, reused request threads), static files under ASGI, and ``uvicorn --workers``
started and stopped by the supervisor's PID."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest
import requests
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started

from omsweb import cli
from omsweb.asgi_http import OmsASGIHandler, RequestThreads
from tests import conftest
from tests.conftest import Proc, free_port, wait_for, wait_http

pytestmark = pytest.mark.filterwarnings("ignore:No directory at:UserWarning")  # no collectstatic


def _get(app, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, bytes]:
    """One GET through the ASGI app, in process."""
    sent: list[dict] = []
    requested: list[bool] = []

    async def receive():
        if not requested:
            requested.append(True)
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected (cancelled when done)

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 5000), "server": ("testserver", 80),
    }  # fmt: skip
    async_to_sync(app)(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.mark.django_db(transaction=True)
def test_request_runs_on_one_reused_thread_with_a_sync_middleware_chain(users):
    # Arrange: record the thread of each request's start signal and of its view
    app = OmsASGIHandler()
    threads: list[str] = []

    def started(**_):
        threads.append(threading.current_thread().name)

    request_started.connect(started)
    try:
        # Act
        for _ in range(3):
            status, _body = _get(
                app, "/api/v1/orders/", [(b"authorization", f"Token {users['trader']}".encode())]
            )
            assert status == 200
    finally:
        request_started.disconnect(started)
    # Assert: the chain is sync (Django's is async: a thread hop per middleware); one
    # pooled thread served every request
    assert iscoroutinefunction(ASGIHandler()._middleware_chain)
    assert not iscoroutinefunction(app._middleware_chain)
    assert len(threads) == 3 and len(set(threads)) == 1
    assert threads[0].startswith("oms-request")
    assert len(app.threads._idle) == 1


@pytest.mark.django_db(transaction=True)
def test_without_reusable_threads_requests_still_served(monkeypatch):
    from omsweb import asgi_http

    monkeypatch.setattr(asgi_http, "CAN_REUSE_THREADS", False)  # an older asgiref
    app = OmsASGIHandler()
    assert _get(app, "/api/v1/orders/")[0] == 401
    assert app.threads._idle == []


def test_request_threads_reused_and_idle_ones_capped():
    pool = RequestThreads(max_idle=1)
    a, b = pool.take(), pool.take()
    assert a is not b
    pool.give_back(a)
    pool.give_back(b)  # beyond max_idle: shut down, not kept
    assert pool.take() is a
    with pytest.raises(RuntimeError):
        b.submit(lambda: None)


def test_static_files_served_through_the_asgi_server(web_server):
    js = requests.get(web_server + "/static/blotter/blotter.js", timeout=10)
    assert js.status_code == 200 and b"window.omsBlotter" in js.content
    assert "javascript" in js.headers["Content-Type"]
    css = requests.get(web_server + "/static/admin/css/base.css", timeout=10)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert requests.get(web_server + "/static/nope.js", timeout=10).status_code == 404


def test_web_argv_runs_workers_from_the_environment(monkeypatch):
    monkeypatch.delenv("OMS_WEB_WORKERS", raising=False)
    assert cli.DEFAULT_WEB_WORKERS == 1
    assert "--workers" not in cli.web_argv("127.0.0.1", 8123)  # one process, no supervisor
    monkeypatch.setenv("OMS_WEB_WORKERS", "1")
    assert "--workers" not in cli.web_argv("127.0.0.1", 8123)
    monkeypatch.setenv("OMS_WEB_WORKERS", "3")
    assert cli.web_argv("127.0.0.1", 8123)[-2:] == ["--workers", "3"]
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("OMS_WEB_WORKERS", bad)
        with pytest.raises(SystemExit, match="OMS_WEB_WORKERS"):
            cli.web_argv("127.0.0.1", 8123)


def _children(pid: int) -> list[int]:
    path = f"/proc/{pid}/task/{pid}/children"
    try:
        with open(path) as fh:
            return [int(p) for p in fh.read().split()]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not reaped yet) is not serving anything
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_workers_stop_with_their_supervisor(tmp_path, how):
    # Arrange: two workers serving one port
    port = free_port()
    proc = Proc(
        cli.web_argv("127.0.0.1", port, workers=2), conftest.test_database_env(), tmp_path / "w.log"
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        children = wait_for(lambda: [p for p in _children(proc.pid) if _alive(p)] or None)
        # Act
        if how == "SIGTERM":
            proc.stop()
        else:
            os.kill(proc.pid, signal.SIGKILL)
            proc.popen.wait(5)
        # Assert: no worker left serving the port
        wait_for(lambda: not any(_alive(p) for p in children), timeout=15)
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        proc.stop()
        for pid in _children(proc.pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
