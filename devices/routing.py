"""WebSocket routes of the devices app.

Devices authenticate with their token header and send no Origin: their route is not behind the
browser stack (origin validation + session auth), which is for the dashboard's streams.
"""

from django.urls import path

from devices.consumers import DeviceConsumer

device_websocket_urlpatterns = [
    path("ws/devices/", DeviceConsumer.as_asgi()),
]

# Browser streams (session-authenticated), added by the dashboard.
websocket_urlpatterns: list = []
