"""Endpoints that devices call with ``Authorization: Device <token>`` (see CONTRACT.md)."""

import json

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from devices.exceptions import DeviceAuthError
from devices.services.tokens import token_authenticate_header
from factory.clientip import client_ip


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


@csrf_exempt  # devices authenticate with their provisioning key, never with a browser session
def device_provision(request: HttpRequest) -> JsonResponse:
    """``POST /api/v1/device/provision/`` (CONTRACT.md, Provisioning): a device registers itself."""
    from devices.services.provisioning import device_provision as provision

    if request.method != "POST":
        return JsonResponse(
            {"detail": f"Method {request.method} is not allowed here; use POST."}, status=405, headers={"Allow": "POST"}
        )
    if request.content_type != "application/json":
        return JsonResponse({"detail": "Send the fields as JSON (Content-Type: application/json)."}, status=415)
    try:
        body = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        body = None
    answer = provision(authorization=request.headers.get("Authorization", ""), body=body, address=client_ip(request))
    headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after is not None else None
    return JsonResponse(answer.body, status=answer.status, headers=headers)
