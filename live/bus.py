"""The live bus: the one way any app sends realtime events to browsers and commands to devices.

Groups (channel layer):
- ``live.plant.<plant_id>``: every live event of a plant. A group message is ``{"type":
  "live.event", "event": {"kind": <str>, ...}, "device_ids": [<id or None>], "plant_id": ...,
  "group": ...}`` or, for several events of one plant at once, ``{"type": "live.events",
  "events": [...], "device_ids": [...], ...}``, ``device_ids`` naming the device of each event.
  Each server process reads a plant group once (``live.hub``) for its browser consumers
  (``live.consumers.LiveConsumer``), which keep what they follow.
- ``device.<device_id>.commands``: commands for one connected device (``devices.consumers``),
  ``{"type": "device.command", "command": {...}}``.

Event kinds (README "Live dashboard"): ``telemetry`` and ``status`` (``live.receivers``), ``alarm``
and ``notification`` (``alerts``), ``rollout`` (``firmware``), ``provisioning`` (``devices``: the
number of devices waiting for approval).

Delivery, the same in every process. All sends of a process leave from one event loop, in the
order they were published: the loop of the process's ASGI server (``serving`` wraps the
application and registers the loop that runs it), or, in a process without one (a Celery worker,
``manage.py mqtt_bridge``, a management command), one background loop thread of the bus.
Publishing from any thread only hands the messages to that loop and returns: ingest never waits
for Redis, and the in-memory channel layer (the embedded default) is only ever touched from the
loop that reads it. Only public APIs of asyncio and Channels are used.

Publish only after commit (from ``transaction.on_commit`` or a signal sent after commit), never
from ``post_save``: a browser must not see rows that may still roll back.
"""

import asyncio
import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from datetime import UTC, datetime

from channels.layers import get_channel_layer
from django.db import connections

logger = logging.getLogger(__name__)

# Concurrent group sends per batch: a Redis layer's connection pool is shared with every consumer
# of the process, and exhausting it fails their receives (MaxConnectionsError).
MAX_CONCURRENT_SENDS = 8
# Batches waiting in the background loop: beyond this a publisher waits (bounded) for the oldest,
# so Redis slower than ingest cannot grow memory. A server loop never makes its callers wait.
MAX_BACKLOG = 100
# How long a process without a server loop waits at exit, and device commands wait, for their sends.
FLUSH_SECONDS = 10.0

Event = tuple[int, int | None, dict]  # (plant_id, device_id or None, event)


def plant_group(plant_id: int) -> str:
    return f"live.plant.{plant_id}"


def command_group(device_id: int) -> str:
    """The group that carries commands (e.g. firmware updates) to one connected device."""
    return f"device.{device_id}.commands"


def iso(ts: datetime | None) -> str | None:
    """UTC ISO 8601 with ``Z`` (what the browser's ``Date.parse`` and the REST API use)."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Delivery:
    """One event loop that sends this process's messages, batch after batch in publish order.

    ``submit`` may be called from any thread; the queue and the sending task are only touched on
    the loop (hand-over through ``call_soon``/``call_soon_threadsafe``, one FIFO for every caller).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, max_backlog: int | None = None):
        self.loop = loop
        self.pid = os.getpid()
        self.max_backlog = max_backlog
        self.batches: deque = deque()
        self.sending: asyncio.Task | None = None
        self.waiting = 0  # batches submitted and not yet sent (any thread: guarded by ``done``)
        self.done = threading.Condition()

    def usable(self) -> bool:
        return self.pid == os.getpid() and self.loop.is_running()

    def on_loop(self) -> bool:
        return _running_loop() is self.loop

    def submit(self, messages: list[tuple[str, dict]]) -> None:
        with self.done:
            self.waiting += 1
        if self.on_loop():
            self.loop.call_soon(self._put, messages)  # behind what other threads handed over before
            return
        try:
            self.loop.call_soon_threadsafe(self._put, messages)
        except RuntimeError:  # the loop closed meanwhile (a server shutting down)
            self._sent()
            raise
        if self.max_backlog is not None:
            with self.done:
                self.done.wait_for(lambda: self.waiting <= self.max_backlog, timeout=FLUSH_SECONDS)

    def flush(self, timeout: float) -> bool:
        """Wait until every batch submitted so far has been sent; False on timeout (never on the loop)."""
        if self.on_loop():
            return self.waiting == 0
        with self.done:
            return self.done.wait_for(lambda: self.waiting == 0, timeout=timeout)

    def _put(self, messages) -> None:
        self.batches.append(messages)
        if self.sending is None:
            self.sending = self.loop.create_task(self._send_batches())

    async def _send_batches(self) -> None:
        try:
            while self.batches:
                try:
                    await _send(self.batches.popleft())
                finally:
                    self._sent()
        finally:
            self.sending = None

    def _sent(self) -> None:
        with self.done:
            self.waiting -= 1
            self.done.notify_all()


async def _send(messages: list[tuple[str, dict]]) -> None:
    """Send one batch of group messages, a few at a time; failures are logged, never raised."""
    layer = get_channel_layer()
    if layer is None:
        return
    limit = asyncio.Semaphore(MAX_CONCURRENT_SENDS)

    async def send(group, message):
        async with limit:
            await layer.group_send(group, message)

    results = await asyncio.gather(*(send(g, m) for g, m in messages), return_exceptions=True)
    failed = [r for r in results if isinstance(r, Exception)]
    if failed:
        logger.warning("live: %d of %d group sends failed: %r", len(failed), len(results), failed[0])


_server: _Delivery | None = None  # the loop of this process's ASGI server
_background: _Delivery | None = None  # the bus's own loop thread, for processes without a server
_lock = threading.Lock()


def attach_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Send this process's messages from ``loop`` from now on (the loop that runs the ASGI server)."""
    global _server
    with _lock:
        if _server is None or _server.loop is not loop or _server.pid != os.getpid():
            _server = _Delivery(loop)


def serving(application):
    """Wrap an ASGI application: the loop that runs it becomes this process's delivery loop.

    Registered on every call (a cheap identity check), so a restarted loop, a forked worker or a
    test's fresh loop takes over.
    """

    async def app(scope, receive, send):
        loop = asyncio.get_running_loop()
        current = _server
        if current is None or current.loop is not loop or current.pid != os.getpid():
            attach_loop(loop)
        return await application(scope, receive, send)

    return app


def _background_delivery() -> _Delivery:
    global _background
    with _lock:
        if _background is None or _background.pid != os.getpid():  # a forked worker needs its own thread
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="live-bus", daemon=True).start()
            _background = _Delivery(loop, max_backlog=MAX_BACKLOG)
        return _background


def _delivery() -> _Delivery:
    server = _server
    if server is not None and server.usable():
        return server
    return _background_delivery()


def flush(timeout: float = FLUSH_SECONDS) -> bool:
    """Wait until what this process published so far has left (for processes without a server
    loop: a command that exits, a test reading the layer itself); False on timeout."""
    return _delivery().flush(timeout)


@atexit.register
def _flush_at_exit() -> None:
    background = _background
    if background is not None and background.pid == os.getpid():
        background.flush(FLUSH_SECONDS)


def _messages(events: list[Event]) -> list[tuple[str, dict]]:
    """Group messages for ``events``: one per plant, whatever the number of devices and events.

    Browsers that follow one device get its events through its plant's group too (``live.hub``
    reads a plant group once per process and hands each consumer what it follows, by
    ``device_ids``): one channel-layer message per plant and ingest batch.
    """
    by_plant: dict[int, tuple[list[dict], list[int | None]]] = {}
    for plant_id, device_id, event in events:
        batch, devices = by_plant.setdefault(plant_id, ([], []))
        batch.append(event)
        devices.append(device_id)
    messages = []
    for plant_id, (batch, devices) in by_plant.items():
        group = plant_group(plant_id)
        if len(batch) == 1:
            message = {"type": "live.event", "event": batch[0], "device_ids": devices, "plant_id": plant_id}
        else:
            message = {"type": "live.events", "events": batch, "device_ids": devices, "plant_id": plant_id}
        messages.append((group, {**message, "group": group}))
    return messages


def publish_many(events: list[Event]) -> None:
    """Publish several ``(plant_id, device_id, event)`` at once: one group message per plant.

    Same contract as ``publish``; returns once the messages are handed to the delivery loop.
    """
    if not events:
        return
    try:
        _delivery().submit(_messages(events))
    except Exception:  # the channel layer (Redis) down must never fail the committed write
        logger.warning("live: publishing %d events failed", len(events), exc_info=True)


def publish(*, plant_id: int, device_id: int | None = None, event: dict) -> None:
    """Publish ``event`` (a JSON-able dict with a ``kind``) to the browsers that follow the plant
    or, with ``device_id``, that device. Call it after commit. Never raises: a failing channel
    layer is logged."""
    publish_many([(plant_id, device_id, event)])


def send_device_commands(commands: list[tuple[int, dict]]) -> None:
    """Send each ``(device_id, command)`` to the device's WebSocket, if it is connected.

    Pushes only make a device ask sooner (it can always poll), so a lost one is logged, not
    raised. In a process without a server loop (a Celery worker) this waits, bounded, until they
    have left: a worker process may be recycled right after its task.
    """
    if not commands:
        return
    messages = [(command_group(device_id), {"type": "device.command", "command": c}) for device_id, c in commands]
    try:
        delivery = _delivery()
        delivery.submit(messages)
        if delivery is _background and not delivery.flush(FLUSH_SECONDS):
            logger.warning("live: %d device commands still unsent after %s s", len(commands), FLUSH_SECONDS)
    except Exception:
        logger.warning("live: sending %d device commands failed", len(commands), exc_info=True)


def send_device_command(device_id: int, command: dict) -> None:
    """Send one command to a connected device (see ``send_device_commands``)."""
    send_device_commands([(device_id, command)])


class _Throttle:
    """Leading and trailing edge, per key and process: the first call publishes at once, calls
    within ``interval`` after it are folded into one publication when the interval ends, so the
    last picture is always the final one. Timers are the delivery loop's (no threads of its own);
    a trailing ``build`` runs in a worker thread of that loop, whose database connection is closed
    after use."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last: dict[Hashable, float] = {}
        self.waiting: set[Hashable] = set()

    def __call__(self, key: Hashable, *, interval: float, build: Callable[[], list[Event]]) -> None:
        now = time.monotonic()
        with self.lock:
            if key in self.waiting:
                return  # the trailing publication will include this change
            wait = self.last.get(key, -interval) + interval - now
            if interval <= 0 or wait <= 0:
                self.last[key] = now
            else:
                self.waiting.add(key)
        if interval <= 0 or wait <= 0:
            if _running_loop() is None:
                _publish_built(key, build)
            else:  # no database work on an event loop: a worker thread builds it
                self._schedule(key, build, 0, leading=True)
            return
        self._schedule(key, build, wait, leading=False)

    def _schedule(self, key, build, delay: float, *, leading: bool) -> None:
        delivery = _delivery()

        def start():
            delivery.loop.create_task(self._trailing(key, build, leading))

        def arm():
            delivery.loop.call_later(delay, start)

        try:
            if delivery.on_loop():
                arm()
            else:
                delivery.loop.call_soon_threadsafe(arm)
        except RuntimeError:
            with self.lock:
                self.waiting.discard(key)
            logger.warning("live: the delivery loop is gone; %r not published", key)

    async def _trailing(self, key, build, leading: bool) -> None:
        if not leading:
            with self.lock:  # before building: a change from now on arms the next publication
                self.waiting.discard(key)
                self.last[key] = time.monotonic()
        events = await asyncio.get_running_loop().run_in_executor(None, _build_closing, key, build)
        publish_many(events)


def _build(key, build) -> list[Event]:
    try:
        return build() or []
    except Exception:  # the dashboard is a view of the data, never a reason to fail the write
        logger.exception("live: building %r failed", key)
        return []


def _build_closing(key, build) -> list[Event]:
    try:
        return _build(key, build)
    finally:
        connections.close_all()  # this worker thread's own connection


def _publish_built(key, build) -> None:
    publish_many(_build(key, build))


_throttle = _Throttle()


def throttle(key: Hashable, *, interval: float, build: Callable[[], list[Event]]) -> None:
    """Publish the events ``build()`` returns, at most once per ``interval`` seconds per ``key`` in
    this process: the first call at once (built in the caller's thread), later calls within the
    interval folded into one publication at its end, so the last change always shows. With
    ``interval <= 0`` every call publishes. For pictures that are expensive to build and cheap to
    skip (a rollout's snapshot); never raises."""
    _throttle(key, interval=interval, build=build)
