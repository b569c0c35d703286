"""ASGI entry point: HTTP (Django) and WebSocket (Channels) on one server.

``/ws/blotter/`` authenticates by session (browsers; Origin checked) or by API token
(``Authorization: Token <key>`` or ``?token=<key>``; programmatic clients).
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omsweb.settings")

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from django.urls import path  # noqa: E402

from orders.blotter.auth import TokenAuthMiddleware  # noqa: E402
from orders.blotter.consumer import BlotterConsumer  # noqa: E402

websocket_urlpatterns = [
    path("ws/blotter/", BlotterConsumer.as_asgi(), name="ws-blotter"),
]

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": AuthMiddlewareStack(TokenAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
