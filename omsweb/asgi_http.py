"""Django's ASGI handler, tuned for a sync API: one thread hop per request.

Django's own ``ASGIHandler`` runs the middleware chain in async mode. Every
``MiddlewareMixin`` (all of Django's, WhiteNoise's) then calls its ``process_request``
and ``process_response`` through ``sync_to_async`` and the sync view through one more,
so a request crosses between the event loop and a worker thread a dozen times; each
crossing is a thread switch that waits for the GIL, and the API's views are sync
anyway (DRF). It also gives every request a thread of its own, created and joined per
request, so per-thread state (Django's connection wrapper, Celery's result backend) is
rebuilt every time.

``OmsASGIHandler`` keeps Django's request parsing and response sending (async, on the
event loop) and changes two things:

* the whole middleware chain and the view run in sync mode, in one ``sync_to_async``
  call: the request leaves the event loop once (as under WSGI). WebSockets are not
  Django views and are unaffected (Channels, ``omsweb/asgi.py``).
* the thread-sensitive thread a request runs on comes from a pool of single-thread
  executors and goes back to it afterwards (``ThreadSensitiveContext(executor=...)``),
  so a request's sync calls (signals, middleware, view, ``response.close``) still share
  one thread, as Django requires, but the threads live on.

Measured on the 2-core machine, a POST refused 401 (no database): p50 2.3-2.9 ms with
Django's handler against 0.6-0.7 ms with this one, the ASGI app called in process; over
HTTP (``make bench``'s floor) 2.7 ms against 1.2 ms. An async-capable WhiteNoise alone
(the whole chain async) did not help: Django's middlewares still hop per method.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import django
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest, HttpResponseBase

# ``ThreadSensitiveContext(executor=...)`` is recent (in asgiref 3.13, not in 3.11); with
# an older asgiref each request gets a new thread, as with Django's handler (still one
# hop per request).
CAN_REUSE_THREADS = "executor" in inspect.signature(ThreadSensitiveContext).parameters

# Idle request threads kept for reuse; a burst beyond this many concurrent requests
# starts extra threads, which stop again when their request ends.
MAX_IDLE_THREADS = 32


class RequestThreads:
    """Single-thread executors, one per running request, reused across requests."""

    def __init__(self, max_idle: int = MAX_IDLE_THREADS) -> None:
        self.max_idle = max_idle
        self._idle: list[ThreadPoolExecutor] = []
        self._lock = threading.Lock()

    def take(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="oms-request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        with self._lock:
            if len(self._idle) < self.max_idle:
                self._idle.append(executor)
                return
        executor.shutdown(wait=False)  # its thread ends once its queue is empty


class OmsASGIHandler(ASGIHandler):
    """HTTP: Django's ASGI handler with a sync middleware chain run in one hop, on a
    reused request thread."""

    def __init__(self) -> None:
        self.threads = RequestThreads()
        super().__init__()

    def load_middleware(self, is_async: bool = False) -> None:
        # Build the chain in sync mode: every middleware is sync-capable, so none needs
        # an adapter, and the sync views are called directly.
        super().load_middleware(is_async=False)

    async def get_response_async(self, request: HttpRequest) -> HttpResponseBase:
        response: HttpResponseBase = await sync_to_async(self.get_response)(request)
        return response

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if not CAN_REUSE_THREADS:
            await super().__call__(scope, receive, send)
            return
        executor = self.threads.take()
        try:
            # Django's handle() opens a ThreadSensitiveContext of its own; nested in
            # this one it is a no-op, so every sync call of the request runs on
            # ``executor``'s thread.
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            self.threads.give_back(executor)


def get_asgi_application() -> OmsASGIHandler:
    """``django.core.asgi.get_asgi_application`` with ``OmsASGIHandler``."""
    django.setup(set_prefix=False)
    return OmsASGIHandler()
