"""Device-facing firmware routes, mounted under ``/api/v1/device/firmware/``."""

from django.urls import path

from firmware.api.device_views import firmware_download, firmware_offer, firmware_status

urlpatterns = [
    path("", firmware_offer, name="device_firmware"),
    path("status/", firmware_status, name="device_firmware_status"),
    path("<int:update_id>/download/", firmware_download, name="device_firmware_download"),
]
