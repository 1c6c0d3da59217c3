"""``POST /api/v1/device/firmware/status/`` as a lean ASGI application, routed in ``factory/asgi.py``.

A 5,000-device stage sends four reports per device within minutes; Django's request cycle and
DRF cost ~1.5 ms each on this machine (STACK.md), so this path skips them, as the telemetry
endpoint does (``devices/ingest_http.py``). Concurrent requests of one process are grouped: one
token query, one transaction applying every valid report through ``updates_report_many`` (the
same service the Django view calls, so transitions, history rows and after-commit hooks are the
same), and each request still gets its own answer. The Django view ``firmware_status`` calls
``firmware_status_http_batch`` with one request and answers byte for byte the same.
"""

import asyncio
import logging

import orjson
from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections

from devices.exceptions import DeviceAuthError
from devices.services.tokens import tokens_authenticate_many
from firmware.exceptions import UpdateReportError
from firmware.services.updates import REPORTABLE, StatusReport, updates_report_many

logger = logging.getLogger(__name__)

Response = tuple[int, bytes, dict]
STATUS_PATH = "/api/v1/device/firmware/status/"
MAX_BODY = 64 * 1024  # a report is ~100 bytes; the detail is cut at 255 characters anyway
NO_AUTH = "Send the device token as 'Authorization: Device <token>'."


def _json(status: int, body: dict, headers: dict | None = None) -> Response:
    return status, orjson.dumps(body), headers or {}


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
            responses[index] = _json(401, {"detail": NO_AUTH})
        else:
            tokens[index] = token.strip()
    devices = dict(zip(tokens, tokens_authenticate_many(list(tokens.values())), strict=True))
    for index, result in devices.items():
        if isinstance(result, DeviceAuthError):
            responses[index] = _json(result.status, {"detail": result.message})
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
            responses[index] = _json(400, {"detail": "The body is not valid JSON."})
            continue
        errors = report_errors(body)
        if errors:
            responses[index] = _json(400, {"detail": "Invalid status report.", "errors": errors})
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
                responses[index] = _json(result.status, {"detail": result.message})
            else:
                responses[index] = _json(200, {"update_id": result.pk, "status": result.status})
    return responses


def _unavailable() -> Response:
    return _json(503, {"detail": "Storage is unavailable; nothing was changed. Retry later."}, {"retry-after": "5"})


def _batch_in_worker(requests: list[tuple[str, bytes]]) -> list[Response]:
    """The batch from a worker thread, which no request signal reaches: it drops stale connections
    (``CONN_MAX_AGE``, a restarted MariaDB) itself. Never inside a Django view (see ingest_http)."""
    close_old_connections()
    return firmware_status_http_batch(requests)


class StatusBatcher:
    """Collects the concurrent requests of this process into batches (group commit): while one batch
    is in the database the next queue up, so batches grow with load and a lone request waits for nobody."""

    def __init__(self, max_batch: int = 200, workers: int = 2):
        self.max_batch, self.workers = max_batch, workers
        self.queue: asyncio.Queue | None = None
        self.loop = None

    async def submit(self, authorization: str, body: bytes) -> Response:
        if self.loop is not asyncio.get_running_loop():  # a new loop (tests, a forked worker): new queue
            self.loop, self.queue = asyncio.get_running_loop(), asyncio.Queue()
            for _ in range(self.workers):
                self.loop.create_task(self._worker())
        future = self.loop.create_future()
        await self.queue.put((authorization, body, future))
        return await future

    async def _worker(self) -> None:
        handle = sync_to_async(_batch_in_worker, thread_sensitive=False)
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                responses = await handle([(authorization, body) for authorization, body, _ in batch])
            except Exception:  # never leave a request hanging
                logger.exception("firmware status: batch failed")
                responses = [_json(500, {"detail": "Internal error; nothing was changed. Retry later."})] * len(batch)
            for (_, _, future), response in zip(batch, responses, strict=True):
                if not future.done():
                    future.set_result(response)


batcher = StatusBatcher()


async def _respond(send, status: int, body: bytes, headers: dict | None = None) -> None:
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def firmware_status_endpoint(scope, receive, send) -> None:
    """The ASGI callable for ``/api/v1/device/firmware/status/``."""
    if scope["method"] != "POST":
        body = orjson.dumps({"detail": f"Method {scope['method']} is not allowed here; use POST."})
        await _respond(send, 405, body, {"allow": "POST"})
        return
    body = await _read_body(receive)
    if body is None:
        await _respond(send, 413, orjson.dumps({"detail": f"Body larger than {MAX_BODY} bytes."}))
        return
    authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    status, payload, extra = await batcher.submit(authorization, body)
    await _respond(send, status, payload, extra)
