"""``POST /api/v1/device/firmware/status/`` as a lean ASGI application, routed in ``factory/asgi.py``.

A 5,000-device stage sends four reports per device within minutes, so this path skips Django's
request cycle and DRF (their cost per request: STACK.md), as the telemetry endpoint does
(``devices/ingest_http.py``), on the same skeleton (``factory.lean_http.LeanEndpoint``).
Concurrent requests of one process are grouped: one token query, one transaction applying every
valid report through ``updates_report_many`` (so transitions, history rows and after-commit
hooks are those of the service), and each request still gets its own answer. This is the only
route of the URL: Django's URLconf has none.
"""

import logging

import orjson
from django.db import DatabaseError

from devices.models import Device
from factory.lean_http import LeanEndpoint, Response, json_response
from firmware.exceptions import UpdateReportError
from firmware.services.updates import REPORTABLE, StatusReport, updates_report_many

logger = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # a report is ~100 bytes; the detail is cut at 255 characters anyway
UNAVAILABLE = json_response(
    503, {"detail": "Storage is unavailable; nothing was changed. Retry later."}, {"retry-after": "5"}
)


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


def firmware_status_reports_apply(requests: list[tuple[Device, bytes]]) -> list[Response]:
    """Validate and apply the reports of authenticated requests ``(device, body)``; one response each.

    400 malformed bodies, 404/409 refused reports (nothing changed), 200 ``{"update_id", "status"}``;
    503 for every report of the batch if the database fails (nothing changed, the device retries).
    Token problems (401/403) are answered before, by ``LeanEndpoint.batch``.
    """
    responses: list[Response | None] = [None] * len(requests)
    pending: list[tuple[int, StatusReport]] = []
    for index, (device, raw) in enumerate(requests):
        try:
            body = orjson.loads(raw or b"null")
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
                responses[index] = UNAVAILABLE
            return responses
        for (index, _), result in zip(pending, results, strict=True):
            if isinstance(result, UpdateReportError):
                responses[index] = json_response(result.status, {"detail": result.message})
            else:
                responses[index] = json_response(200, {"update_id": result.pk, "status": result.status})
    return responses


firmware_status_endpoint = LeanEndpoint(
    firmware_status_reports_apply,
    path="/api/v1/device/firmware/status/",
    name="firmware status",
    failure=json_response(500, {"detail": "Internal error; nothing was changed. Retry later."}),
    unavailable=UNAVAILABLE,
    max_body=lambda: MAX_BODY,
    too_large="Body larger than {limit} bytes.",
    wrong_method="Method {method} is not allowed here; use POST.",
    json_only=False,
)
# The whole batch, tokens included: requests ``(authorization, body)`` in, one response each out.
firmware_status_http_batch = firmware_status_endpoint.batch
