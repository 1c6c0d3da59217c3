"""``POST /api/v1/telemetry/`` as a lean ASGI application, routed in ``factory/asgi.py``.

Devices post here many times a second, so this path skips Django's request cycle (~1.5 ms per
request on this machine, STACK.md) and DRF. It still uses the ORM connection and the one ingest
service, so validation, storage and after-commit hooks are the same as for MQTT and WebSocket.
Responses follow CONTRACT.md: 202, 400, 401, 403, 413, 415, 429 (with Retry-After).

Group commit: concurrent requests in one process are handled together by ``factory.lean_http.GroupCommitBatcher``:
one token query for all of them, one rate-limit round trip, and one transaction that stores
every valid request. Each request still gets its own answer; an invalid request never affects
another, and a database failure answers 503 to the requests of that batch (nothing stored).
"""

import logging
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from devices.exceptions import DeviceAuthError
from devices.services.ingest import IngestItem, rate_limit_many, telemetry_parse, telemetry_store
from devices.services.telemetry_payload import PayloadError
from devices.services.tokens import tokens_authenticate_many
from factory.lean_http import GroupCommitBatcher, Response, json_response, read_body, respond

logger = logging.getLogger(__name__)

ONE_MICROSECOND = timedelta(microseconds=1)
NO_AUTH = "Send the device token as 'Authorization: Device <token>'."


def _unavailable() -> Response:
    return json_response(
        503, {"detail": "Storage is unavailable; nothing was stored. Retry later."}, {"retry-after": "5"}
    )


def telemetry_http_batch(requests: list[tuple[str, bytes]]) -> list[Response]:
    """Authenticate, rate-limit, validate and store several requests ``(authorization, body)``.

    Returns one response per request, in order. Runs in the lean path's worker thread (see
    ``factory.lean_http.GroupCommitBatcher``) or inside a Django view.
    """
    responses: list[Response | None] = [None] * len(requests)
    tokens = {}
    for index, (authorization, _) in enumerate(requests):
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "device" or not token.strip():
            responses[index] = json_response(401, {"detail": NO_AUTH})
        else:
            tokens[index] = token.strip()
    try:
        devices = dict(zip(tokens, tokens_authenticate_many(list(tokens.values())), strict=True))
    except DatabaseError:
        logger.exception("telemetry: database unavailable during authentication")
        return [response or _unavailable() for response in responses]
    for index, result in devices.items():
        if isinstance(result, DeviceAuthError):
            responses[index] = json_response(result.status, {"detail": result.message})
    authenticated = [i for i, result in devices.items() if not isinstance(result, DeviceAuthError)]
    limit = settings.TELEMETRY_RATE_LIMIT
    for index, retry_after in zip(authenticated, rate_limit_many([devices[i].pk for i in authenticated]), strict=True):
        if retry_after:
            detail = f"Device '{devices[index].uid}' sends more than {limit} requests/s; batch messages or slow down."
            responses[index] = json_response(429, {"detail": detail}, {"retry-after": str(retry_after)})
    pending = [index for index in authenticated if responses[index] is None]
    items, accepted, now = _parse_requests(requests, pending, devices, responses)
    if items:
        try:
            telemetry_store(list(items.values()), received_at=now)
        except DatabaseError:
            logger.exception("telemetry: database unavailable while storing")
            for index in accepted:
                responses[index] = _unavailable()
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


def telemetry_http_sync(authorization: str, body: bytes) -> Response:
    """One request (the Django fallback view and tests)."""
    return telemetry_http_batch([(authorization, body)])[0]


batcher = GroupCommitBatcher(
    telemetry_http_batch,
    name="telemetry",
    failure=json_response(500, {"detail": "Internal error; nothing was stored. Retry later."}),
)


async def telemetry_endpoint(scope, receive, send) -> None:
    """The ASGI callable for ``/api/v1/telemetry/``."""
    if scope["method"] != "POST":
        await respond(send, 405, orjson.dumps({"detail": "Use POST."}), {"allow": "POST"})
        return
    headers = dict(scope["headers"])
    limit = settings.TELEMETRY_MAX_BODY_BYTES
    too_large = orjson.dumps({"detail": f"Body larger than {limit} bytes; send smaller batches."})
    length = headers.get(b"content-length", b"")
    if length.isdigit() and int(length) > limit:
        await respond(send, 413, too_large)
        return
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        await respond(send, 415, orjson.dumps({"detail": "Send Content-Type: application/json."}))
        return
    body = await read_body(receive, limit)
    if body is None:
        await respond(send, 413, too_large)
        return
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    status, payload, extra = await batcher.submit(authorization, body)
    await respond(send, status, payload, extra)
