"""The one ingest service every transport (HTTP, MQTT, device WebSocket) calls.

1. ``payload_parse`` validates the whole payload (``telemetry_payload``) before any write.
2. ``telemetry_store`` writes every reading of every device in one transaction with multi-row
   statements: readings (duplicates ignored, so a device re-sending is harmless), latest values,
   rollup marks, state changes and the devices' last-seen time.
3. After commit it sends ``devices.signals.telemetry_ingested`` (live dashboard, alert
   evaluation) and ``device_status_changed`` for devices that came back online.
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from devices.models import Device, Metric
from devices.services.telemetry_payload import Message, payload_parse
from devices.signals import device_status_changed, telemetry_ingested

logger = logging.getLogger(__name__)
CHUNK = 5000
# Device.last_seen_at is written at most once per this interval per device: a device posting
# several times a second must not turn every request into an extra UPDATE.
LAST_SEEN_RESOLUTION = timedelta(seconds=1)
LATEST_CACHE_TTL = 24 * 3600

_metric_ids: dict[str, int] = {}


@dataclass(slots=True)
class IngestItem:
    device: Device
    messages: list[Message]


def telemetry_parse(body: bytes, *, now: datetime) -> list[Message]:
    """Validate a payload against CONTRACT.md with the configured limits. Raises ``PayloadError``."""
    oldest = now - timedelta(days=settings.TELEMETRY_RETENTION_RAW_DAYS)
    return payload_parse(body, now=now, oldest=oldest, max_batch=settings.TELEMETRY_MAX_BATCH)


def metric_ids(names) -> dict[str, int]:
    """Map metric names to ids, creating unknown names. Cached per process once committed."""
    missing = [name for name in names if name not in _metric_ids]
    if missing:
        Metric.objects.bulk_create([Metric(name=name) for name in missing], ignore_conflicts=True)
        found = dict(Metric.objects.filter(name__in=missing).values_list("name", "id"))
        if connection.in_atomic_block:
            # The rows may still roll back with the caller's transaction: cache them only after commit.
            transaction.on_commit(lambda: _metric_ids.update(found))
            return {name: _metric_ids.get(name) or found[name] for name in names}
        _metric_ids.update(found)
    return {name: _metric_ids[name] for name in names}


def _sql(kind: str) -> str:
    mysql = connection.vendor == "mysql"
    return {
        "reading": ("INSERT IGNORE INTO" if mysql else "INSERT OR IGNORE INTO")
        + " telemetry_reading (device_id, metric_id, ts, value) VALUES (%s, %s, %s, %s)",
        "state": ("INSERT IGNORE INTO" if mysql else "INSERT OR IGNORE INTO")
        + " telemetry_machine_state (device_id, ts, state) VALUES (%s, %s, %s)",
        # MySQL evaluates ON DUPLICATE KEY assignments left to right: value must be set before ts.
        "latest": "INSERT INTO telemetry_latest (device_id, metric_id, ts, value) VALUES (%s, %s, %s, %s) "
        + (
            "ON DUPLICATE KEY UPDATE value = IF(VALUES(ts) >= ts, VALUES(value), value), ts = GREATEST(ts, VALUES(ts))"
            if mysql
            else "ON CONFLICT (device_id, metric_id) DO UPDATE SET "
            "value = CASE WHEN excluded.ts >= telemetry_latest.ts THEN excluded.value ELSE telemetry_latest.value END, "
            "ts = MAX(telemetry_latest.ts, excluded.ts)"
        ),
        "pending": "INSERT INTO telemetry_rollup_pending (device_id, bucket, generation) VALUES (%s, %s, 1) "
        + (
            "ON DUPLICATE KEY UPDATE generation = generation + 1"
            if mysql
            else "ON CONFLICT (device_id, bucket) DO UPDATE SET generation = generation + 1"
        ),
    }[kind]


def _executemany(cursor, sql: str, rows: list) -> None:
    for start in range(0, len(rows), CHUNK):
        cursor.executemany(sql, rows[start : start + CHUNK])


def telemetry_store(items: list[IngestItem], *, received_at: datetime) -> int:
    """Store already-validated messages of one or more devices atomically; return the message count.

    Idempotent for re-sent readings (same device, metric and ts are ignored). Sends the
    after-commit signals described in the module docstring.
    """
    names = {name for item in items for message in item.messages for name in message.values}
    ids = metric_ids(sorted(names))
    adapt = connection.ops.adapt_datetimefield_value
    readings, states, pending, latest, current_state = [], [], set(), {}, {}
    for item in items:
        device_id = item.device.pk
        last_state = item.device.state
        for message in sorted(item.messages, key=lambda m: m.ts):
            ts = adapt(message.ts)
            for name, value in message.values.items():
                readings.append((device_id, ids[name], ts, value))
                key = (device_id, name)
                if key not in latest or latest[key][0] <= message.ts:
                    latest[key] = (message.ts, value)
            if message.values:
                pending.add((device_id, adapt(message.ts.replace(second=0, microsecond=0))))
            late = item.device.state_since is not None and message.ts < item.device.state_since
            # Only changes are stored; a late message is compared with nothing (its neighbours in
            # the stored timeline are unknown here), so it is always kept. Repeats are harmless.
            if message.state is not None and (late or message.state != last_state):
                states.append((device_id, ts, message.state))
                last_state = message.state
                current_state[device_id] = (message.state, message.ts)
    with transaction.atomic():
        with connection.cursor() as cursor:
            _executemany(cursor, _sql("reading"), readings)
            _executemany(cursor, _sql("latest"), [(d, ids[n], adapt(ts), v) for (d, n), (ts, v) in latest.items()])
            _executemany(cursor, _sql("pending"), sorted(pending))
            _executemany(cursor, _sql("state"), states)
        came_online = _touch_devices(items, received_at, current_state)
        transaction.on_commit(lambda: _after_commit(items, received_at, came_online, latest))
    return sum(len(item.messages) for item in items)


def _touch_devices(items: list[IngestItem], received_at: datetime, current_state: dict) -> list[int]:
    """Update last-seen, online flag and current machine state; return devices that came online.

    ``current_state`` maps a device to the (state, since) its messages ended in, where ``since``
    is when that state began; it replaces the device's state unless older (late data).
    """
    came_online = []
    for item in items:
        device = item.device
        fields = {}
        if device.last_seen_at is None or received_at - device.last_seen_at >= LAST_SEEN_RESOLUTION:
            fields["last_seen_at"] = received_at
        state, since = current_state.get(device.pk, (None, None))
        if state is not None and (device.state_since is None or since >= device.state_since):
            fields.update(state=state, state_since=since)
        if fields:
            Device.objects.filter(pk=device.pk).update(**fields)
        if not device.online and Device.objects.filter(pk=device.pk, online=False).update(online=True):
            came_online.append(device.pk)
        for name, value in fields.items():
            setattr(device, name, value)
        device.online = True
    return came_online


def latest_cache_key(device_id: int) -> str:
    return f"telemetry:latest:{device_id}"


def _after_commit(items, received_at, came_online, latest) -> None:
    """Refresh the latest-value cache and notify listeners. Never fails the (committed) ingest.

    The cache is a best-effort copy of ``telemetry_latest``: with Redis down, readings are still
    stored, readers fall back to the table and /healthz reports the cache as failing.
    """
    by_device: dict[int, dict] = {}
    for (device_id, name), (ts, value) in latest.items():
        by_device.setdefault(device_id, {})[name] = [ts.isoformat(), value]
    try:
        for device_id, values in by_device.items():
            current = cache.get(latest_cache_key(device_id)) or {}
            current.update({k: v for k, v in values.items() if k not in current or current[k][0] <= v[0]})
            cache.set(latest_cache_key(device_id), current, LATEST_CACHE_TTL)
    except Exception as exc:  # the cache is optional on this path: log, keep going
        logger.warning("latest-value cache not updated: %s", type(exc).__name__)
    for signal, kwargs in (
        (device_status_changed, {"device_ids": came_online, "online": True, "at": received_at}),
        (telemetry_ingested, {"items": items, "received_at": received_at}),
    ):
        if signal is device_status_changed and not came_online:
            continue
        for receiver, result in signal.send_robust(sender=Device, **kwargs):
            if isinstance(result, Exception):
                logger.warning("%s receiver %s failed: %s", signal, receiver, type(result).__name__)




def rate_limit_retry_after(device_id: int) -> int | None:
    """Per-device request limit (``TELEMETRY_RATE_LIMIT`` per second, over 10-second windows).

    Returns the seconds to wait when the device is over its limit, else None. Counted in the
    shared cache so every web process sees the same count; fails open when the cache is down.
    """
    window = 10
    limit = settings.TELEMETRY_RATE_LIMIT * window
    if limit <= 0:
        return None
    now = int(time.time())
    key = f"telemetry:rate:{device_id}:{now // window}"
    try:
        cache.add(key, 0, window * 2)
        count = cache.incr(key)
    except Exception:  # cache down or key evicted: never block ingest on the limiter
        return None
    if count > limit:
        return window - now % window
    return None
