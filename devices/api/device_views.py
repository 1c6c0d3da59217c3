"""Endpoints that devices call with ``Authorization: Device <token>`` (see CONTRACT.md)."""

from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from devices.exceptions import DeviceAuthError
from devices.services.tokens import token_authenticate_header


def device_self(request: HttpRequest) -> JsonResponse:
    """Who the token belongs to: lets an integrator check a freshly provisioned device's credentials."""
    if request.method != "GET":
        # Devices parse JSON only; Django's require_GET would answer with an empty HTML 405.
        return JsonResponse(
            {"detail": f"Method {request.method} is not allowed here; use GET."}, status=405, headers={"Allow": "GET"}
        )
    try:
        device = token_authenticate_header(request.headers.get("Authorization", ""))
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
