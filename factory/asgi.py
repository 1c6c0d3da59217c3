"""ASGI entry point: HTTP goes to Django, WebSockets to the Channels consumers of each app."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")
django_asgi_app = get_asgi_application()  # set up Django before importing consumers

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from devices.ingest_http import telemetry_endpoint  # noqa: E402
from devices.routing import device_websocket_urlpatterns  # noqa: E402
from firmware.status_http import firmware_status_endpoint  # noqa: E402
from live.bus import serving  # noqa: E402
from live.routing import websocket_urlpatterns  # noqa: E402

# The high-rate device endpoints skip Django's request cycle (factory/lean_http.py). This table is
# their only route: Django's URLconf does not route these paths.
LEAN_ROUTES = {endpoint.path: endpoint for endpoint in (telemetry_endpoint, firmware_status_endpoint)}


async def http_router(scope, receive, send):
    """The lean device endpoints by exact path; everything else goes to Django."""
    await LEAN_ROUTES.get(scope["path"], django_asgi_app)(scope, receive, send)


device_websockets = URLRouter(device_websocket_urlpatterns)
browser_websockets = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))


async def websocket_router(scope, receive, send):
    """Devices (token header, no Origin) and browsers (session cookie, Origin checked) are kept apart."""
    if scope["path"].startswith("/ws/devices/"):
        await device_websockets(scope, receive, send)
    else:
        await browser_websockets(scope, receive, send)


# The loop that runs the application sends this process's live events (live/bus.py).
application = serving(ProtocolTypeRouter({"http": http_router, "websocket": websocket_router}))
