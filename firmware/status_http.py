"""``POST /api/v1/device/firmware/status/`` as a lean ASGI application, routed in ``factory/asgi.py``.

A 5,000-device stage sends four reports per device within minutes; Django's request cycle and
DRF cost ~1.5 ms each on this machine (STACK.md), so this path skips them, as the telemetry
endpoint does (``devices/ingest_http.py``). Concurrent requests of one process are grouped: one
token query, one transaction applying every valid report through ``updates_report_many`` (the
same service the Django view calls, so transitions, history rows and after-commit hooks are the
same), and each request still gets its own answer. The Django view ``firmware_status`` calls
``firmware_status_http_batch`` with one request and answers byte for byte the same.
"""

import logging

import orjson
from django.db import DatabaseError

from devices.exceptions import DeviceAuthError
from devices.services.tokens import tokens_authenticate_many
from factory.lean_http import GroupCommitBatcher, Response, json_response, read_body, respond
from firmware.exceptions import UpdateReportError
from firmware.services.updates import REPORTABLE, StatusReport, updates_report_many

logger = logging.getLogger(__name__)

STATUS_PATH = "/api/v1/device/firmware/status/"
MAX_BODY = 64 * 1024  # a report is ~100 bytes; the detail is cut at 255 characters anyway
NO_AUTH = "Send the device token as 'Authorization: Device <token>'."


def report_errors(body) -> dict:
    """Field errors of a status report body (empty when it is well formed)."""
    if not isinstance(body, dict):
        return {"non_field_errors": ["Send a JSON object."]}
    errors = {}
    unknown = sorted(set(body) - {"update_id", "status", "detail"})
    if unknown:
        errors.update({name: ["Unknown field. Fields: update_id, status, detail."] for name in unknown})
    update_id = body.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id <= 0:
        errors["update_id"] = ["A positive integer (from GET /api/v1/device/firmware/)."]
    if body.get("status") not in REPORTABLE:
        errors["status"] = [f"One of: {', '.join(REPORTABLE)}."]
    detail = body.get("detail", "")
    if detail is not None and not isinstance(detail, str):
        errors["detail"] = ["A string."]
    return errors


def _authenticate(requests: list[tuple[str, bytes]], responses: list) -> dict:
    tokens = {}
    for index, (authorization, _) in enumerate(requests):
        scheme, _, token = authorization.partition(" ")
        # Authentication schemes are case-insensitive (RFC 9110 §11.1); devices in the field vary.
        if scheme.lower() != "device" or not token.strip():
            responses[index] = json_response(401, {"detail": NO_AUTH})
        else:
            tokens[index] = token.strip()
    devices = dict(zip(tokens, tokens_authenticate_many(list(tokens.values())), strict=True))
    for index, result in devices.items():
        if isinstance(result, DeviceAuthError):
            responses[index] = json_response(result.status, {"detail": result.message})
    return {index: device for index, device in devices.items() if not isinstance(device, DeviceAuthError)}


def firmware_status_http_batch(requests: list[tuple[str, bytes]]) -> list[Response]:
    """Authenticate, validate and apply several requests ``(authorization, body)``; one response each.

    401/403 token problems, 400 malformed bodies, 404/409 refused reports (nothing changed),
    200 ``{"update_id", "status"}``; 503 for every request of the batch if the database fails
    (nothing changed, the device retries).
    """
    responses: list[Response | None] = [None] * len(requests)
    try:
        devices = _authenticate(requests, responses)
    except DatabaseError:
        logger.exception("firmware status: database unavailable during authentication")
        return [response or _unavailable() for response in responses]
    pending: list[tuple[int, StatusReport]] = []
    for index, device in devices.items():
        try:
            body = orjson.loads(requests[index][1] or b"null")
        except orjson.JSONDecodeError:
            responses[index] = json_response(400, {"detail": "The body is not valid JSON."})
            continue
        errors = report_errors(body)
        if errors:
            responses[index] = json_response(400, {"detail": "Invalid status report.", "errors": errors})
            continue
        pending.append((index, StatusReport(device, body["update_id"], body["status"], body.get("detail") or "")))
    if pending:
        try:
            results = updates_report_many([report for _, report in pending])
        except DatabaseError:
            logger.exception("firmware status: database unavailable while applying reports")
            for index, _ in pending:
                responses[index] = _unavailable()
            return responses
        for (index, _), result in zip(pending, results, strict=True):
            if isinstance(result, UpdateReportError):
                responses[index] = json_response(result.status, {"detail": result.message})
            else:
                responses[index] = json_response(200, {"update_id": result.pk, "status": result.status})
    return responses


def _unavailable() -> Response:
    return json_response(
        503, {"detail": "Storage is unavailable; nothing was changed. Retry later."}, {"retry-after": "5"}
    )


batcher = GroupCommitBatcher(
    firmware_status_http_batch,
    name="firmware status",
    failure=json_response(500, {"detail": "Internal error; nothing was changed. Retry later."}),
)


async def firmware_status_endpoint(scope, receive, send) -> None:
    """The ASGI callable for ``/api/v1/device/firmware/status/``."""
    if scope["method"] != "POST":
        body = orjson.dumps({"detail": f"Method {scope['method']} is not allowed here; use POST."})
        await respond(send, 405, body, {"allow": "POST"})
        return
    body = await read_body(receive, MAX_BODY)
    if body is None:
        await respond(send, 413, orjson.dumps({"detail": f"Body larger than {MAX_BODY} bytes."}))
        return
    authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    status, payload, extra = await batcher.submit(authorization, body)
    await respond(send, status, payload, extra)
