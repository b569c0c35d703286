"""ASGI entry point: HTTP (Django) and WebSocket (Channels) on one server.

HTTP goes through ``omsweb.asgi_http.OmsASGIHandler`` (Django's handler with the sync
middleware chain and view run in one thread hop, on reused request threads).

``/ws/blotter/`` authenticates by session (browsers; Origin checked) or by API token
(``Authorization: Token <token>`` or the ``oms.token.<token>`` subprotocol; programmatic
clients; ``blotter/auth.py``).
"""

import multiprocessing
import os
import signal

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omsweb.settings")


def _stop_with_supervisor() -> None:
    """In a worker of ``uvicorn --workers N`` (a spawned child of uvicorn's supervisor):
    have the kernel send SIGTERM when the supervisor dies. SIGTERM to the supervisor
    stops its workers itself; this covers a supervisor killed outright (SIGKILL), after
    which a worker would otherwise go on serving the port. Linux only; a no-op when
    the server is a single process."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    try:
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent.pid:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


_stop_with_supervisor()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from omsweb.asgi_http import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from django.urls import path  # noqa: E402

from blotter.auth import TokenAuthMiddleware  # noqa: E402
from blotter.consumer import BlotterConsumer  # noqa: E402

websocket_urlpatterns = [
    path("ws/blotter/", BlotterConsumer.as_asgi(), name="ws-blotter"),
]

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
