"""The uplink: sends queued messages to ``POST /api/v1/telemetry/`` in batches, oldest first.

A message leaves the queue only when the platform answered 202 for its batch, so a crash or an
outage between sending and the answer re-sends it (the platform ignores exact duplicates of a
reading). What each answer means here (the contract's ingest endpoint):

- 202: accepted, delete the batch.
- 400: those messages are invalid and always will be: the ones named by the error list's
  ``index`` (or the whole batch, if none is named) go to the dead-letter table, the rest is sent
  again. Every 400 removes at least one message, so the loop always ends.
- 413: the batch is too large: halve it (a single message that is too large is dead-lettered).
- 401/403: this device's token is refused: hold its messages (other devices go on) and retry
  after ``retry_max``; the engineer fixes the token, nothing is lost meanwhile.
- 429: this device is rate limited: hold it for ``Retry-After`` seconds.
- anything else, or no answer: the platform is down; back off exponentially with jitter.
"""

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time

import httpx

from edge.config import Config
from edge.health import Health
from edge.store import Store

logger = logging.getLogger("edge.uplink")
PATH = "/api/v1/telemetry/"


class Uplink:
    """Drains ``store`` to the platform at ``config.url`` with each device's own token (``tokens``)."""

    def __init__(self, config: Config, store: Store, health: Health, tokens: dict[str, str]):
        self.config, self.store, self.health, self.tokens = config, store, health, tokens
        self.wakeup = asyncio.Event()
        self.held: dict[str, float] = {}  # device uid -> monotonic time until which it is not sent
        self.failures = 0
        self.batch_limit = config.batch_size
        self.accepted = 0  # messages the platform accepted since start

    def wake(self) -> None:
        """New messages are queued: send them now unless backing off."""
        self.wakeup.set()

    async def run(self) -> None:
        # https:// is verified (certificate chain and host name) against ``uplink.ca_file`` or the system's CAs.
        verify = ssl.create_default_context(cafile=str(self.config.ca_file)) if self.config.ca_file else True
        async with httpx.AsyncClient(base_url=self.config.url, timeout=self.config.timeout, verify=verify) as client:
            while True:
                self.wakeup.clear()
                delay = await self.send_once(client)
                if delay is None:  # nothing sendable: wait for new messages or a held device's turn
                    timeout = min([until - time.monotonic() for until in self.held.values()] + [1.0])
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), max(timeout, 0.01))
                elif delay > 0:  # backing off: new messages must not cut the pause short
                    await asyncio.sleep(delay)

    async def send_once(self, client: httpx.AsyncClient) -> float | None:
        """Send one batch; returns None when there was nothing to send, else the pause before the next."""
        now = time.monotonic()
        self.held = {uid: until for uid, until in self.held.items() if until > now}
        batch = self.store.peek(self.batch_limit, frozenset(self.held))
        if batch is None:
            return None
        device, rows = batch
        token = self.tokens.get(device)
        if token is None:
            reason = f"no token for device {device} in the configuration (it was queued under an older one)"
            self.store.dead_letter([(message_id, reason) for message_id, _ in rows], 0)
            self.health.error("rejected", reason)
            return 0
        body = '{"messages":[' + ",".join(message for _, message in rows) + "]}"
        headers = {"Authorization": f"Device {token}", "Content-Type": "application/json"}
        try:
            response = await client.post(PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return self._back_off(f"{self.config.url}{PATH} unreachable: {exc!r}")
        return self._answer(device, rows, response)

    def _answer(self, device: str, rows: list[tuple[int, str]], response: httpx.Response) -> float:
        status = response.status_code
        if status == 202:
            self.store.delete([message_id for message_id, _ in rows])
            self.accepted += len(rows)
            self.failures = 0
            return 0
        if status == 400:
            self._reject(device, rows, response)
            return 0
        if status == 413 and len(rows) > 1:
            self.batch_limit = max(1, len(rows) // 2)
            logger.info("Batch of %d messages too large for the platform; sending %d.", len(rows), self.batch_limit)
            return 0
        if status == 413:
            self.store.dead_letter([(rows[0][0], "a single message exceeds the platform's body limit")], status)
            self.health.error("rejected", f"{device}: one message too large (413), kept in dead letters")
            return 0
        if status in (401, 403):
            self.held[device] = time.monotonic() + self.config.retry_max
            self.health.error("auth", f"{device}: token refused ({status} {_detail(response)}); retrying later")
            return 0
        if status == 429:
            self.held[device] = time.monotonic() + _retry_after(response, self.config.retry_initial)
            return 0
        return self._back_off(f"{self.config.url}{PATH} answered {status} {_detail(response)}")

    def _reject(self, device: str, rows: list[tuple[int, str]], response: httpx.Response) -> None:
        reasons: dict[int, list[str]] = {}
        try:
            for error in response.json().get("errors", []):
                index = error.get("index")
                if isinstance(index, int) and 0 <= index < len(rows):
                    reasons.setdefault(index, []).append(f"{error.get('field')}: {error.get('message')}")
        except (ValueError, AttributeError):
            pass
        if not reasons:  # nothing names a message: the batch as a whole is refused
            reasons = {index: [_detail(response)] for index in range(len(rows))}
        self.store.dead_letter([(rows[index][0], "; ".join(text)) for index, text in reasons.items()], 400)
        first = next(iter(reasons.values()))
        self.health.error("rejected", f"{device}: {len(reasons)} message(s) refused (400), first: {first[0]}")

    def _back_off(self, text: str) -> float:
        self.health.error("uplink", text)
        delay = min(self.config.retry_max, self.config.retry_initial * 2**self.failures)
        self.failures = min(self.failures + 1, 30)
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 (jitter, not cryptography)


def _detail(response: httpx.Response) -> str:
    try:
        return json.dumps(response.json())[:300]
    except ValueError:
        return response.text[:300]


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return max(float(response.headers.get("Retry-After", default)), 0.0)
    except ValueError:
        return default
