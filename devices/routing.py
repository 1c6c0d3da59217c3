"""WebSocket routes of the devices app.

Devices authenticate with their token header and send no Origin: their route is not behind the
browser stack (origin validation + session auth), which is for the dashboard's streams.
"""

from django.urls import path

from devices.consumers import DeviceConsumer
from devices.dashboard.consumers import LiveConsumer

device_websocket_urlpatterns = [
    path("ws/devices/", DeviceConsumer.as_asgi()),
]

# Browser streams (session cookie, Origin checked): the live dashboard (devices/dashboard/consumers.py).
websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
