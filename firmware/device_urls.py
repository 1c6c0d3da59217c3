"""Device-facing firmware routes, mounted under ``/api/v1/device/firmware/``.

``status/`` is not here: its only route is the lean one in ``factory/asgi.py`` (firmware/status_http.py).
"""

from django.urls import path

from firmware.api.device_views import firmware_download, firmware_offer

urlpatterns = [
    path("", firmware_offer, name="device_firmware"),
    path("<int:update_id>/download/", firmware_download, name="device_firmware_download"),
]
