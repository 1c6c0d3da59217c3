"""Live events for the operator dashboard: the one publishing helper and the receivers that feed it.

One group per plant, ``live.plant.<plant_id>``, read once per server process by
``devices.dashboard.hub`` for the browser consumers (``devices.dashboard.consumers.LiveConsumer``)
that follow the plant or one of its devices. A group message is ``{"type": "live.event",
"event": {"kind": <str>, ...}, "device_ids": [<id or None>], "plant_id": ..., "group": ...}`` (or,
for several events of one plant at once, ``{"type": "live.events", "events": [...],
"device_ids": [...], ...}``, ``device_ids`` naming the device of each event); the consumer
forwards events to the browser as JSON (coalescing kind ``telemetry`` only).

Event kinds sent from here (README "Live dashboard" documents them for the browser side):
- ``telemetry``: ``{"kind", "plant_id", "device_id", "ts", "values": {metric: {"ts", "value"}},
  "state", "state_since", "online", "last_seen_at"}``, one per device and ingest batch;
- ``status``: ``{"kind", "plant_id", "device_id", "online", "at"}`` when a device goes on/offline.
Other apps add their own kinds (``alarm`` from ``alerts``) through ``live_publish``.
"""

import asyncio
import atexit
import logging
import os
import threading
import weakref
from contextlib import suppress
from datetime import UTC, datetime

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer

logger = logging.getLogger(__name__)


def plant_group(plant_id: int) -> str:
    return f"live.plant.{plant_id}"


def iso(ts: datetime | None) -> str | None:
    """UTC ISO 8601 with ``Z`` (what the browser's ``Date.parse`` and the REST API use)."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Concurrent group sends per publishing call: a Redis layer's connection pool is shared with
# every consumer of the process, and exhausting it fails their receives (MaxConnectionsError).
MAX_CONCURRENT_SENDS = 8
# The last publishing call handed to each server loop: the next one waits for it (see live_publish_many).
_last_send: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_order_lock = threading.Lock()


def _messages(events: list[tuple[int, int | None, dict]]) -> list[tuple[str, dict]]:
    """Group messages for ``events``: one per plant, whatever the number of devices and events.

    Browsers that follow one device get its events through its plant's group too: each process
    reads a plant group once (``devices.dashboard.hub``) and its consumers keep what they follow,
    by ``device_ids`` (the device of each event, ``None`` for plant-wide events). One channel-layer
    message per plant and ingest batch instead of one per device as well: at a thousand devices a
    second that is the difference between a Redis round trip per batch and a thousand.
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


def _server_loop():
    """The running event loop of this process's ASGI server (or test), if the caller may hand it work.

    From a worker thread of the server (``sync_to_async``: views, the lean ingest path) that is the
    loop the thread serves; from any other thread of the process (Celery beat embedded in the web
    process, a timer thread) it is the loop of the browser streams (``register_server_loop``).
    """
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if loop is not None and getattr(local, "main_event_loop_pid", None) == os.getpid() and loop.is_running():
        return loop
    registered = _registered_loop() if _registered_loop is not None else None
    if registered is not None and registered.is_running() and _registered_pid == os.getpid():
        try:
            if asyncio.get_running_loop() is registered:
                return None  # called on the loop itself: cannot block it; the caller's own loop sends
        except RuntimeError:
            pass
        return registered
    return None


_registered_loop = None  # weakref.ref to the loop of this process's browser streams
_registered_pid = None


def register_server_loop(loop) -> None:
    """Called by the browser stream's hub when it starts in a server loop: publishing from other
    threads of this process (not ``sync_to_async`` workers) is handed to it. Without it, an
    in-memory channel layer (the embedded default) would be touched from a foreign loop."""
    global _registered_loop, _registered_pid
    _registered_loop, _registered_pid = weakref.ref(loop), os.getpid()


class _Background:
    """A persistent event loop in a daemon thread for processes without an ASGI server (the MQTT
    bridge, Celery workers): publishing hands sends to it and returns, instead of building an
    event loop per call (``async_to_sync``). At most ``MAX_BACKLOG`` publishing calls wait; beyond
    that the caller waits for the oldest (Redis slower than ingest must not grow memory). Pending
    sends are flushed at exit."""

    MAX_BACKLOG = 100

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.pending: list = []
        self.pid = os.getpid()
        threading.Thread(target=self.loop.run_forever, name="live-publisher", daemon=True).start()
        atexit.register(self.drain, 5.0)

    def submit(self, coroutine):
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        self.pending = [f for f in self.pending if not f.done()]
        self.pending.append(future)
        if len(self.pending) > self.MAX_BACKLOG:
            with suppress(Exception):
                self.pending[0].result(timeout=10)
        return future

    def drain(self, timeout: float) -> None:
        for future in list(self.pending):
            with suppress(Exception):
                future.result(timeout=timeout)


_background: _Background | None = None
_background_lock = threading.Lock()


def _background_loop() -> _Background:
    global _background
    with _background_lock:
        if _background is None or _background.pid != os.getpid():  # a forked worker needs its own thread
            _background = _Background()
        return _background


def live_publish_many(events: list[tuple[int, int | None, dict]]) -> None:
    """Send several ``(plant_id, device_id, event)`` at once (same contract as ``live_publish``).

    Called from a thread of an ASGI server process (Daphne, Uvicorn: the HTTP, WebSocket and MQTT
    ingest paths, an embedded beat), the sends are handed to the server's event loop and this
    returns at once: ingest never waits for Redis, and an in-memory layer is only ever touched
    from its own loop. Elsewhere, with a layer that crosses processes (Redis: the MQTT bridge,
    Celery workers), a background loop of the process sends them; with the in-memory layer (tests,
    management commands of the embedded default) it sends and waits, in a private event loop.
    """
    layer = get_channel_layer()
    if layer is None or not events:
        return
    messages = _messages(events)

    async def send_all():
        limit = asyncio.Semaphore(MAX_CONCURRENT_SENDS)

        async def send(group, message):
            async with limit:
                await layer.group_send(group, message)

        results = await asyncio.gather(*(send(g, m) for g, m in messages), return_exceptions=True)
        failed = [r for r in results if isinstance(r, Exception)]
        if failed:
            logger.warning("live: %d of %d group sends failed: %r", len(failed), len(results), failed[0])

    def chained(previous):
        async def in_order():
            # Events leave in the order they were published (a device's "status" before the
            # reading that brought it online), not in whichever order Redis answers.
            if previous is not None and not previous.done():
                with suppress(Exception):
                    await asyncio.wrap_future(previous)
            await send_all()

        return in_order()

    loop = _server_loop()
    try:
        if loop is not None:
            with _order_lock:
                _last_send[loop] = asyncio.run_coroutine_threadsafe(chained(_last_send.get(loop)), loop)
        elif not isinstance(layer, InMemoryChannelLayer):
            background = _background_loop()
            with _order_lock:
                _last_send[background.loop] = background.submit(chained(_last_send.get(background.loop)))
        else:
            async_to_sync(send_all)()
    except Exception:  # the channel layer (Redis) down must never fail the committed write
        logger.warning("live: publishing %d events failed", len(events), exc_info=True)


def live_publish(*, plant_id: int, device_id: int | None = None, event: dict) -> None:
    """Publish ``event`` (a JSON-able dict with a ``kind``) to the plant's group and, with
    ``device_id``, to the device's group.

    Call it from sync code **after commit** (inside ``transaction.on_commit`` or a signal sent
    after commit), never from ``post_save``: a browser must not see rows that may still roll
    back. Other apps (``alerts`` for kind ``alarm``: ``id``, ``device_id``, ``severity``,
    ``state``, ``message``...) call it too. Never raises: a failing channel layer is logged.
    """
    live_publish_many([(plant_id, device_id, event)])


def telemetry_event(device, messages, received_at: datetime) -> dict:
    """The ``telemetry`` event of one device for one ingest batch: the newest value of each metric."""
    values: dict[str, tuple[datetime, float]] = {}
    newest = None
    for message in messages:
        newest = message.ts if newest is None or message.ts > newest else newest
        for name, value in message.values.items():
            if name not in values or values[name][0] < message.ts:
                values[name] = (message.ts, value)
    return {
        "kind": "telemetry",
        "plant_id": device.plant_id,
        "device_id": device.pk,
        "ts": iso(newest),
        "values": {name: {"ts": iso(ts), "value": value} for name, (ts, value) in sorted(values.items())},
        "state": device.state,
        "state_since": iso(device.state_since),
        "online": True,
        "last_seen_at": iso(received_at),
    }


def on_telemetry_ingested(sender, *, items, received_at, **kwargs) -> None:
    """Receiver of ``telemetry_ingested`` (sent after commit): one telemetry event per device."""
    events = []
    for item in items:
        device = item.device
        events.append((device.plant_id, device.pk, telemetry_event(device, item.messages, received_at)))
    live_publish_many(events)


def on_device_status_changed(sender, *, device_ids, online, at, **kwargs) -> None:
    """Receiver of ``device_status_changed`` (sent after commit): one status event per device."""
    from devices.models import Device

    plants = dict(Device.objects.filter(pk__in=device_ids).values_list("pk", "plant_id"))
    events = []
    for pk in device_ids:
        if pk in plants:
            event = {"kind": "status", "plant_id": plants[pk], "device_id": pk, "online": online, "at": iso(at)}
            events.append((plants[pk], pk, event))
    live_publish_many(events)
