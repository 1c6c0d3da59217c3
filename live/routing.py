"""WebSocket route of the browsers' live stream, ``/ws/live/`` (session cookie, Origin checked)."""

from django.urls import path

from live.consumers import LiveConsumer

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
]
