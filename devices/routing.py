"""WebSocket route of the devices app: ``/ws/devices/``.

Devices authenticate with their token header and send no Origin: their route is not behind the
browser stack (origin validation + session auth), which is for the dashboard's stream (``live.routing``).
"""

from django.urls import path

from devices.consumers import DeviceConsumer

device_websocket_urlpatterns = [
    path("ws/devices/", DeviceConsumer.as_asgi()),
]
