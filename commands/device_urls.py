"""Device-facing command routes, mounted under ``/api/v1/device/commands/``."""

from django.urls import path

from commands.device_views import device_command_result, device_commands

urlpatterns = [
    path("", device_commands, name="device_commands"),
    path("<int:command_id>/result/", device_command_result, name="device_command_result"),
]
