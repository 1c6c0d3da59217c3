"""The lean ASGI device endpoints (telemetry, firmware status): one skeleton, routed in ``factory/asgi.py``.

``LeanEndpoint`` is the skeleton: the HTTP checks of a device POST (method, size, content type),
the body, the device token, then the endpoint's own handler and its answer back.

``GroupCommitBatcher`` collects the concurrent requests of a process and hands them, as one batch,
to a synchronous handler in a worker thread (group commit): while one batch is in the database the
next requests queue up, so batches grow with load and a lone request waits for nobody. Each
request still gets its own ``(status, body, headers)`` answer.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections

from devices.exceptions import DeviceAuthError
from devices.models import Device
from devices.services.tokens import token_from_authorization, tokens_authenticate_many
from factory.logs import HEADER, joined_request_ids, request_id
from factory.metrics import GROUP_COMMIT_SECONDS, GROUP_COMMIT_SIZE, count_rejected
from factory.requestid import request_id_for

logger = logging.getLogger(__name__)

Response = tuple[int, bytes, dict]
Handler = Callable[[list[tuple[str, bytes]]], list[Response]]
# The part an endpoint writes: authenticated requests ``(device, body)`` in, one response each out.
DeviceHandler = Callable[[list[tuple[Device, bytes]]], list[Response]]
Submit = Callable[[str, bytes], Awaitable[Response]]
# Why a device request was refused, by status (factory_ingest_rejected_total's reason).
REJECTION_REASONS = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    405: "method",
    413: "too_large",
    415: "content_type",
    429: "rate_limited",
    500: "error",
    503: "unavailable",
}
_HEADER_BYTES = HEADER.lower().encode()


def json_response(status: int, body: dict, headers: dict | None = None) -> Response:
    return status, orjson.dumps(body), headers or {}


def in_worker_thread(handler: Handler) -> Handler:
    """``handler`` for a worker thread, which no request signal reaches: it drops stale connections
    (``CONN_MAX_AGE``, a restarted MariaDB) itself, as Django does when a request starts. Never use
    it inside a Django view: it would close the connection of an open transaction."""

    def run(requests: list[tuple[str, bytes]]) -> list[Response]:
        close_old_connections()
        return handler(requests)

    return run


class GroupCommitBatcher:
    """Batches of at most ``max_batch`` concurrent requests for ``handler``; ``workers`` batches may be
    in flight. ``failure`` is the answer to every request of a batch whose handler raised.

    One batch in flight per process by default: while it is in the database the next one grows,
    and more batches in flight made fewer, smaller batches and more threads contending with the
    event loop (docs/benchmarks.md, "Group-commit batches in flight").
    """

    def __init__(self, handler: Handler, *, name: str, failure: Response, max_batch: int = 200, workers: int = 1):
        self.handler, self.name, self.failure = in_worker_thread(handler), name, failure
        self.max_batch, self.workers = max_batch, workers
        self.queue: asyncio.Queue | None = None
        self.loop = None

    async def submit(self, authorization: str, body: bytes) -> Response:
        if self.loop is not asyncio.get_running_loop():  # a new loop (tests, a forked worker): new queue
            self.loop, self.queue = asyncio.get_running_loop(), asyncio.Queue()
            for _ in range(self.workers):
                self.loop.create_task(self._worker())
        future = self.loop.create_future()
        await self.queue.put((authorization, body, future, request_id.get()))
        return await future

    async def _worker(self) -> None:
        handle = sync_to_async(self.handler, thread_sensitive=False)
        size, seconds = GROUP_COMMIT_SIZE.labels(self.name), GROUP_COMMIT_SECONDS.labels(self.name)
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            # The batch's log lines (and the tasks its commit queues) carry its requests' ids.
            request_id.set(joined_request_ids([item[3] for item in batch]))
            started = time.perf_counter()
            try:
                responses = await handle([(authorization, body) for authorization, body, _, _ in batch])
            except Exception:  # never leave a request hanging
                logger.exception("%s: batch failed", self.name)
                responses = [self.failure] * len(batch)
            seconds.observe(time.perf_counter() - started)
            size.observe(len(batch))
            for (_, _, future, _), response in zip(batch, responses, strict=True):
                if not future.done():
                    future.set_result(response)


async def respond(send, status: int, body: bytes, headers: dict | None = None) -> None:
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive, limit: int) -> bytes | None:
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


class LeanEndpoint:
    """``POST <path>`` from a device as an ASGI application: checks, body, device token, then ``handler``.

    The checks, in order: 405 (with ``Allow``) for any other method; with ``json_only`` a declared
    Content-Length that is not a number (400) or over the limit (413, before reading anything) and
    a content type other than ``application/json`` (415); then 413 as soon as the body passes
    ``max_body()`` bytes. ``wrong_method`` may name ``{method}``, ``too_large`` names ``{limit}``.
    Accepted requests wait in a ``GroupCommitBatcher`` for ``batch``: one token query for the
    group (401/403 answered here), then ``handler`` with the ``(device, body)`` of the others.
    ``unavailable`` answers every request that sent a token when that query fails.

    Every answer carries the request's ``X-Request-ID`` (``factory.requestid``); with ``transport``
    refusals are counted in ``factory_ingest_rejected_total`` by reason.
    """

    def __init__(
        self,
        handler: DeviceHandler,
        *,
        path: str,
        name: str,
        failure: Response,
        unavailable: Response,
        max_body: Callable[[], int],
        too_large: str,
        wrong_method: str,
        json_only: bool,
        transport: str | None = None,
    ):
        self.handler, self.path, self.name, self.unavailable = handler, path, name, unavailable
        self.transport = transport
        self.max_body, self.too_large, self.wrong_method, self.json_only = max_body, too_large, wrong_method, json_only
        self.batcher = GroupCommitBatcher(self.batch, name=name, failure=failure)

    async def __call__(self, scope, receive, send) -> None:
        await self.serve(scope, receive, send, self.batcher.submit)

    async def serve(self, scope, receive, send, submit: Submit) -> None:
        """Answer one request; ``submit`` hands its ``(authorization, body)`` to ``batch``."""
        headers = dict(scope["headers"])
        client = scope.get("client")
        incoming = headers.get(_HEADER_BYTES)
        rid = request_id_for(client[0] if client else "", incoming.decode("latin-1") if incoming else None)
        request_id.set(rid)
        answer = self._refusal(scope)
        if answer is None:
            limit = self.max_body()
            body = await read_body(receive, limit)
            if body is None:
                answer = json_response(413, {"detail": self.too_large.format(limit=limit)})
            else:
                authorization = headers.get(b"authorization", b"").decode("latin-1")
                answer = await submit(authorization, body)
        status, content, extra = answer
        if status >= 400 and self.transport:
            count_rejected(self.transport, REJECTION_REASONS.get(status, str(status)))
        await respond(send, status, content, {**extra, "x-request-id": rid})

    def _refusal(self, scope) -> Response | None:
        """The answer to a request refused on its method or headers alone, else None."""
        if scope["method"] != "POST":
            return json_response(405, {"detail": self.wrong_method.format(method=scope["method"])}, {"allow": "POST"})
        if not self.json_only:
            return None
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"")
        if length and not length.isdigit():
            return json_response(400, {"detail": "Content-Length must be the body size in bytes."})
        limit = self.max_body()
        if length and int(length) > limit:
            return json_response(413, {"detail": self.too_large.format(limit=limit)})
        if headers.get(b"content-type", b"").split(b";")[0].strip().lower() != b"application/json":
            return json_response(415, {"detail": "Send Content-Type: application/json."})
        return None

    def batch(self, requests: list[tuple[str, bytes]]) -> list[Response]:
        """Authenticate several requests ``(authorization, body)`` with one query, then ``handler``.

        Returns one response per request, in order: 401/403 for refused tokens, ``unavailable``
        when the token query fails, otherwise the handler's answer.
        """
        responses: list[Response | None] = [None] * len(requests)
        tokens = {}
        for index, (authorization, _) in enumerate(requests):
            try:
                tokens[index] = token_from_authorization(authorization)
            except DeviceAuthError as exc:
                responses[index] = json_response(exc.status, {"detail": exc.message})
        try:
            results = tokens_authenticate_many(list(tokens.values()))
        except DatabaseError:
            logger.exception("%s: database unavailable during authentication", self.name)
            return [response or self.unavailable for response in responses]
        devices = {}
        for index, result in zip(tokens, results, strict=True):
            if isinstance(result, DeviceAuthError):
                responses[index] = json_response(result.status, {"detail": result.message})
            else:
                devices[index] = result
        if devices:
            answers = self.handler([(device, requests[index][1]) for index, device in devices.items()])
            for index, answer in zip(devices, answers, strict=True):
                responses[index] = answer
        return responses
