"""Live events for the operator dashboard: the one publishing helper and the receivers that feed it.

Groups (the browser consumer ``devices.dashboard.consumers.LiveConsumer`` joins them):
``live.plant.<plant_id>`` and ``live.device.<device_id>``. A group message is
``{"type": "live.event", "event": {"kind": <str>, ...}, "plant_id": ..., "group": ...}`` (or,
for several events of one plant at once, ``{"type": "live.events", "events": [...], ...}``); the
consumer forwards events to the browser as JSON (coalescing kind ``telemetry`` only).

Event kinds sent from here (README "Live dashboard" documents them for the browser side):
- ``telemetry``: ``{"kind", "plant_id", "device_id", "ts", "values": {metric: {"ts", "value"}},
  "state", "state_since", "online", "last_seen_at"}``, one per device and ingest batch;
- ``status``: ``{"kind", "plant_id", "device_id", "online", "at"}`` when a device goes on/offline.
Other apps add their own kinds (``alarm`` from ``alerts``) through ``live_publish``.
"""

import asyncio
import logging
import os
import threading
import weakref
from contextlib import suppress
from datetime import UTC, datetime

from asgiref.sync import SyncToAsync, async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def plant_group(plant_id: int) -> str:
    return f"live.plant.{plant_id}"


def device_group(device_id: int) -> str:
    return f"live.device.{device_id}"


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
    """Group messages for ``events``: one ``live.events`` message per plant, one ``live.event`` per device.

    The plant group gets a batch (one channel-layer message per subscriber instead of one per
    event); ``plant_id`` and ``group`` let a consumer joined to both a plant and one of its devices
    drop the second copy.
    """
    by_plant: dict[int, list[dict]] = {}
    messages = []
    for plant_id, device_id, event in events:
        by_plant.setdefault(plant_id, []).append(event)
        if device_id is not None:
            group = device_group(device_id)
            messages.append((group, {"type": "live.event", "event": event, "plant_id": plant_id, "group": group}))
    for plant_id, batch in by_plant.items():
        group = plant_group(plant_id)
        if len(batch) == 1:
            message = {"type": "live.event", "event": batch[0], "plant_id": plant_id, "group": group}
        else:
            message = {"type": "live.events", "events": batch, "plant_id": plant_id, "group": group}
        messages.insert(0, (group, message))
    return messages


def _server_loop():
    """The running event loop of the ASGI server (or test) whose worker thread is calling, if any."""
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if loop is not None and getattr(local, "main_event_loop_pid", None) == os.getpid() and loop.is_running():
        return loop
    return None


def live_publish_many(events: list[tuple[int, int | None, dict]]) -> None:
    """Send several ``(plant_id, device_id, event)`` at once (same contract as ``live_publish``).

    Called from a worker thread of an ASGI server (Daphne, Uvicorn: the HTTP, WebSocket and MQTT
    ingest paths), the sends are handed to the server's event loop and this returns at once:
    ingest never waits for Redis, and the in-memory layer is only ever touched from its own loop.
    Elsewhere (Celery, management commands) it sends and waits, in a private event loop.
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

    loop = _server_loop()
    try:
        if loop is not None:
            with _order_lock:
                previous = _last_send.get(loop)

                async def in_order():
                    # Events leave in the order they were published (a device's "status" before the
                    # reading that brought it online), not in whichever order Redis answers.
                    if previous is not None and not previous.done():
                        with suppress(Exception):
                            await asyncio.wrap_future(previous)
                    await send_all()

                _last_send[loop] = asyncio.run_coroutine_threadsafe(in_order(), loop)
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
