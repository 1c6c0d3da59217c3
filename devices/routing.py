"""WebSocket routes of the devices app (telemetry streams arrive with the telemetry issue)."""

websocket_urlpatterns: list = []
