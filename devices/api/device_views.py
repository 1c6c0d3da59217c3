"""Endpoints that devices call with ``Authorization: Device <token>`` (see CONTRACT.md)."""

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from devices.exceptions import DeviceAuthError
from devices.ingest_http import telemetry_http_sync
from devices.models import Device
from devices.services.tokens import token_authenticate


def device_from_request(request: HttpRequest) -> Device:
    """Authenticate the calling device from its ``Authorization`` header or raise ``DeviceAuthError``."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    # Authentication schemes are case-insensitive (RFC 9110 §11.1); devices in the field vary.
    if scheme.lower() != "device" or not credential.strip():
        raise DeviceAuthError("Send the device token as 'Authorization: Device <token>'.", status=401)
    return token_authenticate(credential.strip())


def device_self(request: HttpRequest) -> JsonResponse:
    """Who the token belongs to: lets an integrator check a freshly provisioned device's credentials."""
    if request.method != "GET":
        # Devices parse JSON only; Django's require_GET would answer with an empty HTML 405.
        return JsonResponse(
            {"detail": f"Method {request.method} is not allowed here; use GET."}, status=405, headers={"Allow": "GET"}
        )
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


@csrf_exempt
def telemetry_post(request: HttpRequest) -> HttpResponse:
    """``POST /api/v1/telemetry/`` through Django, for servers that do not use ``factory.asgi``'s
    lean route (e.g. a WSGI deployment or the test client). Same checks and statuses."""
    if request.method != "POST":
        return JsonResponse({"detail": "Use POST."}, status=405, headers={"Allow": "POST"})
    limit = settings.TELEMETRY_MAX_BODY_BYTES
    too_large = {"detail": f"Body larger than {limit} bytes; send smaller batches."}
    try:
        length = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        length = -1
    if length < 0:
        return JsonResponse({"detail": "Content-Length must be the body size in bytes."}, status=400)
    if length > limit:
        return JsonResponse(too_large, status=413)
    if request.content_type != "application/json":
        return JsonResponse({"detail": "Send Content-Type: application/json."}, status=415)
    # Not request.body: that applies DATA_UPLOAD_MAX_MEMORY_SIZE (a 400 page above 2.5 MB by
    # default), while this endpoint's limit is TELEMETRY_MAX_BODY_BYTES.
    body = request.read(limit + 1)
    if len(body) > limit:
        return JsonResponse(too_large, status=413)
    status, payload, headers = telemetry_http_sync(request.headers.get("Authorization", ""), body)
    return HttpResponse(payload, status=status, content_type="application/json", headers=headers)
