"""Fixtures of the edge gateway's tests: free ports, bounded waits, a telemetry receiver, configs.

The receiver is a real HTTP server (aiohttp) that answers like the platform's telemetry endpoint
(202 / 400 with indexed errors / 401 / 413 / 429 / 503), so the uplink is tested over the wire;
one end-to-end test (test_platform_e2e.py) uses the platform itself.
"""

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest_asyncio
from aiohttp import web

from edge.config import parse

TOKENS = {"press-token": "press-01", "packer-token": "packer-01", "gateway-token": "gateway-01"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    """Poll ``predicate`` every 10 ms until it is truthy (returned) or ``timeout`` seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.01)


def all_sent(gateway) -> bool:
    """Every tag of ``gateway`` was reported at least once and the queue is empty (all accepted).

    Counting accepted messages is not enough: OPC UA notifications of several nodes may arrive one by one.
    """
    return len(gateway.reporter.last) == len(gateway.config.tags) and gateway.store.depth == 0


async def cancel(*tasks: asyncio.Task) -> None:
    """Cancel ``tasks`` and wait until they have finished (their clients closed), cancelling again
    any that lost the cancellation (Python 3.11's ``wait_for`` can, see ``Gateway.stop``)."""
    pending = set(tasks)
    for _ in range(20):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    raise AssertionError(f"tasks did not stop: {pending}")


class Receiver:
    """``POST /api/v1/telemetry/`` on a local port: records accepted messages per device uid.

    ``script`` holds answers for the next requests, each a status or a ``(status, body)`` pair;
    when it is empty the receiver checks the token (401 if unknown) and answers 202.
    """

    def __init__(self, port: int | None = None, ssl_context=None):
        self.port = port or free_port()
        self.ssl_context = ssl_context  # HTTPS (as "localhost") when given
        self.messages: list[tuple[str, dict]] = []
        self.requests: list[tuple[str, int, int]] = []  # (uid, number of messages, status answered)
        self.script: list = []
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        if self.ssl_context is not None:
            return f"https://localhost:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    def of(self, uid: str) -> list[dict]:
        return [message for device, message in self.messages if device == uid]

    async def handle(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Device ")
        uid = TOKENS.get(token, "?")
        batch = json.loads(await request.read())["messages"]
        status, body = (202, None)
        if self.script:
            answer = self.script.pop(0)
            status, body = answer if isinstance(answer, tuple) else (answer, {"detail": "scripted"})
        elif uid == "?":
            status, body = 401, {"detail": "Unknown device token."}
        self.requests.append((uid, len(batch), status))
        if status == 202:
            self.messages.extend((uid, message) for message in batch)
            body = {"accepted": len(batch)}
        headers = {"Retry-After": "0"} if status == 429 else None
        return web.json_response(body, status=status, headers=headers)

    async def start(self) -> "Receiver":
        app = web.Application()
        app.router.add_post("/api/v1/telemetry/", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, reuse_address=True, ssl_context=self.ssl_context).start()
        return self

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()
            self.runner = None


@pytest_asyncio.fixture
async def receiver():
    server = await Receiver().start()
    yield server
    await server.stop()


def gateway_config(tmp_path: Path, url: str, connectors: list[dict], devices: list[dict], **sections):
    """A parsed config with fast retries and health, a queue in ``tmp_path``; ``sections`` override."""
    data = {
        "uplink": {"url": url, "retry_initial": 0.02, "retry_max": 0.2, "timeout": 2},
        "gateway": {"uid": "gateway-01", "token": "gateway-token"},
        "queue": {"path": str(tmp_path / "queue.sqlite3")},
        "health": {"interval": 3600},
        "connectors": connectors,
        "devices": devices,
    }
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value}
    return parse(data, base=tmp_path)
