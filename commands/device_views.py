"""Command endpoints devices call with ``Authorization: Device <token>`` (CONTRACT.md, Commands).

- ``GET /api/v1/device/commands/`` → ``200 {"commands": [{"type", "id", "name", "params",
  "expires_at"}, ...]}``: the device's open commands, oldest first (pending ones become delivered).
- ``POST /api/v1/device/commands/<id>/result/`` with ``{"status": "succeeded" | "failed",
  "result": {...}}`` → ``200 {"id", "state"}``; 404 not this device's command, 409 expired or
  already answered otherwise, 400 bad body.
"""

import orjson
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from commands.exceptions import CommandError
from commands.models import CommandEvent
from commands.services import command_result_record, commands_poll
from devices.exceptions import DeviceAuthError
from devices.services.tokens import token_authenticate_header


def _method_not_allowed(request, allowed: str) -> JsonResponse:
    return JsonResponse(
        {"detail": f"Method {request.method} is not allowed here; use {allowed}."},
        status=405,
        headers={"Allow": allowed},
    )


def _device_or_error(request):
    try:
        return token_authenticate_header(request.headers.get("Authorization", "")), None
    except DeviceAuthError as exc:
        return None, JsonResponse({"detail": exc.message}, status=exc.status)


def _refused(error: CommandError) -> JsonResponse:
    return JsonResponse(
        {"detail": error.message, **({"errors": error.errors} if error.errors else {})}, status=error.status
    )


def device_commands(request: HttpRequest) -> JsonResponse:
    """``GET /api/v1/device/commands/``: the commands waiting for this device."""
    if request.method != "GET":
        return _method_not_allowed(request, "GET")
    device, error = _device_or_error(request)
    if error:
        return error
    return JsonResponse({"commands": commands_poll(device=device)})


@csrf_exempt  # devices authenticate with their token, never with a browser session
def device_command_result(request: HttpRequest, command_id: int) -> JsonResponse:
    """``POST /api/v1/device/commands/<id>/result/``: the device's answer to one of its commands."""
    if request.method != "POST":
        return _method_not_allowed(request, "POST")
    device, error = _device_or_error(request)
    if error:
        return error
    if request.content_type != "application/json":
        return JsonResponse({"detail": "Send the result as JSON (Content-Type: application/json)."}, status=415)
    try:
        body = orjson.loads(request.body or b"null")
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        return JsonResponse(
            {"detail": 'Send a JSON object: {"status": "succeeded" | "failed", "result": {...}}.'}, status=400
        )
    try:
        command = command_result_record(
            device=device, command_id=command_id, status=body.get("status"), result=body.get("result"),
            via=CommandEvent.Via.HTTP,
        )  # fmt: skip
    except CommandError as exc:
        return _refused(exc)
    return JsonResponse({"id": command.pk, "state": command.state})
