"""ASGI entry point: HTTP goes to Django, WebSockets to the Channels consumers of each app."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")
django_asgi_app = get_asgi_application()  # set up Django before importing consumers

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from devices.ingest_http import telemetry_endpoint  # noqa: E402
from devices.routing import websocket_urlpatterns as device_ws  # noqa: E402

TELEMETRY_PATH = "/api/v1/telemetry/"


async def http_router(scope, receive, send):
    """The device ingest endpoint bypasses Django's request cycle (see devices/ingest_http.py)."""
    if scope["path"] == TELEMETRY_PATH:
        await telemetry_endpoint(scope, receive, send)
    else:
        await django_asgi_app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": http_router,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(device_ws))),
    }
)
