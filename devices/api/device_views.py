"""Endpoints that devices call with ``Authorization: Device <token>`` (see CONTRACT.md)."""

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from devices.exceptions import DeviceAuthError
from devices.models import Device
from devices.services.tokens import token_authenticate


def device_from_request(request: HttpRequest) -> Device:
    """Authenticate the calling device from its ``Authorization`` header or raise ``DeviceAuthError``."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Device" or not credential.strip():
        raise DeviceAuthError("Send the device token as 'Authorization: Device <token>'.", status=401)
    return token_authenticate(credential.strip())


@require_GET
def device_self(request: HttpRequest) -> JsonResponse:
    """Who the token belongs to: lets an integrator check a freshly provisioned device's credentials."""
    try:
        device = device_from_request(request)
    except DeviceAuthError as exc:
        return JsonResponse({"detail": exc.message}, status=exc.status)
    return JsonResponse(
        {
            "uid": device.uid,
            "name": device.name,
            "kind": device.kind,
            "firmware_version": device.firmware_version,
            "expected_interval": device.expected_interval_seconds,
            "server_time": timezone.now().isoformat(),
        }
    )
