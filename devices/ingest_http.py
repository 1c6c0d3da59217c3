"""``POST /api/v1/telemetry/`` as a lean ASGI application, routed in ``factory/asgi.py``.

Devices post here many times a second, so this path skips Django's request cycle (~1.5 ms per
request on this machine, STACK.md) and DRF. It still uses the ORM connection and the one ingest
service, so validation, storage and after-commit hooks are the same as for MQTT and WebSocket.
Responses follow CONTRACT.md: 202, 400, 401, 403, 413, 415, 429 (with Retry-After).
"""

import logging

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from devices.exceptions import DeviceAuthError
from devices.services.ingest import IngestItem, rate_limit_retry_after, telemetry_parse, telemetry_store
from devices.services.telemetry_payload import PayloadError
from devices.services.tokens import token_authenticate

logger = logging.getLogger(__name__)


def _json(status: int, body: dict, headers: dict | None = None) -> tuple[int, bytes, dict]:
    return status, orjson.dumps(body), headers or {}


def telemetry_http_sync(authorization: str, body: bytes) -> tuple[int, bytes, dict]:
    """Authenticate, rate-limit, validate and store one request (runs in a worker thread)."""
    close_old_connections()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "device" or not token.strip():
        return _json(401, {"detail": "Send the device token as 'Authorization: Device <token>'."})
    try:
        device = token_authenticate(token.strip())
    except DeviceAuthError as exc:
        return _json(exc.status, {"detail": exc.message})
    except DatabaseError:
        logger.exception("telemetry: database unavailable during authentication")
        return _json(503, {"detail": "Storage is unavailable; retry later."}, {"retry-after": "5"})
    retry_after = rate_limit_retry_after(device.pk)
    if retry_after:
        limit = settings.TELEMETRY_RATE_LIMIT
        return _json(
            429,
            {"detail": f"Device '{device.uid}' sends more than {limit} requests/s; batch messages or slow down."},
            {"retry-after": str(retry_after)},
        )
    now = timezone.now()
    try:
        messages = telemetry_parse(body, now=now)
    except PayloadError as exc:
        return _json(exc.status, {"errors": exc.errors})
    try:
        accepted = telemetry_store([IngestItem(device=device, messages=messages)], received_at=now)
    except DatabaseError:
        logger.exception("telemetry: database unavailable while storing")
        return _json(503, {"detail": "Storage is unavailable; nothing was stored. Retry later."}, {"retry-after": "5"})
    return _json(202, {"accepted": accepted})


_handle = sync_to_async(telemetry_http_sync, thread_sensitive=False)


async def _respond(send, status: int, body: bytes, headers: dict | None = None) -> None:
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive, limit: int) -> bytes | None:
    """The request body, or None as soon as it exceeds ``limit`` bytes."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def telemetry_endpoint(scope, receive, send) -> None:
    """The ASGI callable for ``/api/v1/telemetry/``."""
    if scope["method"] != "POST":
        await _respond(send, 405, orjson.dumps({"detail": "Use POST."}), {"allow": "POST"})
        return
    headers = dict(scope["headers"])
    limit = settings.TELEMETRY_MAX_BODY_BYTES
    too_large = orjson.dumps({"detail": f"Body larger than {limit} bytes; send smaller batches."})
    length = headers.get(b"content-length", b"")
    if length.isdigit() and int(length) > limit:
        await _respond(send, 413, too_large)
        return
    content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        await _respond(send, 415, orjson.dumps({"detail": "Send Content-Type: application/json."}))
        return
    body = await _read_body(receive, limit)
    if body is None:
        await _respond(send, 413, too_large)
        return
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    status, payload, extra = await _handle(authorization, body)
    await _respond(send, status, payload, extra)
