"""``POST /api/v1/telemetry/`` as a lean ASGI application, routed in ``factory/asgi.py``.

Devices post here many times a second, so this path skips Django's request cycle and DRF (their
cost per request: STACK.md). It still uses the ORM connection and the one ingest service, so
validation, storage and after-commit hooks are the same as for MQTT and WebSocket. Responses
follow CONTRACT.md: 202, 400, 401, 403, 413, 415, 429 (with Retry-After). This is the only route
of the URL: Django's URLconf has none.

Group commit: concurrent requests in one process are handled together (``factory.lean_http``):
one token query for all of them, one rate-limit round trip, and one transaction that stores
every valid request. Each request still gets its own answer; an invalid request never affects
another, and a database failure answers 503 to the requests of that batch (nothing stored).
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from devices.models import Device
from devices.services.ingest import IngestItem, rate_limit_many, telemetry_parse, telemetry_store
from devices.services.telemetry_payload import PayloadError
from factory.lean_http import LeanEndpoint, Response, json_response

logger = logging.getLogger(__name__)

ONE_MICROSECOND = timedelta(microseconds=1)
UNAVAILABLE = json_response(
    503, {"detail": "Storage is unavailable; nothing was stored. Retry later."}, {"retry-after": "5"}
)


def telemetry_requests_store(requests: list[tuple[Device, bytes]]) -> list[Response]:
    """Rate-limit, validate and store the bodies of authenticated requests ``(device, body)``.

    Returns one response per request, in order. Runs in the lean path's worker thread, behind
    ``LeanEndpoint.batch`` (which answers missing or refused tokens).
    """
    responses: list[Response | None] = [None] * len(requests)
    devices = {index: device for index, (device, _) in enumerate(requests)}
    limit = settings.TELEMETRY_RATE_LIMIT
    for index, retry_after in zip(devices, rate_limit_many([device.pk for device in devices.values()]), strict=True):
        if retry_after:
            detail = f"Device '{devices[index].uid}' sends more than {limit} requests/s; batch messages or slow down."
            responses[index] = json_response(429, {"detail": detail}, {"retry-after": str(retry_after)})
    pending = [index for index in devices if responses[index] is None]
    items, accepted, now = _parse_requests(requests, pending, devices, responses)
    if items:
        try:
            telemetry_store(list(items.values()), received_at=now, transport="http")
        except DatabaseError:
            logger.exception("telemetry: database unavailable while storing")
            for index in accepted:
                responses[index] = UNAVAILABLE
            return responses
        for index, count in accepted.items():
            responses[index] = json_response(202, {"accepted": count})
    return responses


def _parse_requests(requests, pending: list[int], devices: dict, responses: list) -> tuple[dict, dict, datetime]:
    """Validate the bodies of the ``pending`` requests; refused ones get their answer in ``responses``.

    Returns the messages to store per device, the message count per accepted request and the
    last receive time.
    """
    items: dict[int, IngestItem] = {}
    accepted: dict[int, int] = {}
    now = timezone.now() - ONE_MICROSECOND
    for index in pending:
        # Each request gets its own receive time (the ts of its messages without one): requests
        # grouped here were sent separately, and one shared instant would turn a device's second
        # request into duplicates of its first (same device, metric, ts), silently ignored.
        now = max(timezone.now(), now + ONE_MICROSECOND)
        try:
            messages = telemetry_parse(requests[index][1], now=now)
        except PayloadError as exc:
            responses[index] = json_response(exc.status, {"errors": exc.errors})
            continue
        except Exception:  # a parser bug answers this request only, not its whole group
            logger.exception("telemetry: could not parse a request of device %s", devices[index].uid)
            responses[index] = json_response(500, {"detail": "Internal error; nothing was stored. Retry later."})
            continue
        device = devices[index]
        items.setdefault(device.pk, IngestItem(device=device, messages=[])).messages.extend(messages)
        accepted[index] = len(messages)
    return items, accepted, now


telemetry_endpoint = LeanEndpoint(
    telemetry_requests_store,
    path="/api/v1/telemetry/",
    name="telemetry",
    failure=json_response(500, {"detail": "Internal error; nothing was stored. Retry later."}),
    unavailable=UNAVAILABLE,
    max_body=lambda: settings.TELEMETRY_MAX_BODY_BYTES,
    too_large="Body larger than {limit} bytes; send smaller batches.",
    wrong_method="Use POST.",
    json_only=True,
    transport="http",
)
# The whole batch, tokens included: requests ``(authorization, body)`` in, one response each out.
telemetry_http_batch = telemetry_endpoint.batch
