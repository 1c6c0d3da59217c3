"""The one ingest service every transport (HTTP, MQTT, device WebSocket) calls.

1. ``payload_parse`` validates the whole payload (``telemetry_payload``) before any write.
2. ``telemetry_store`` writes every reading of every device in one transaction with multi-row
   statements: readings (duplicates ignored, so a device re-sending is harmless), latest values,
   rollup marks, state changes and the devices' last-seen time; messages naming a ``product`` or
   ``order`` go to ``production.services.context`` (one query when they repeat what the device
   said before, runs started and ended when they change).
3. After commit it sends ``devices.signals.telemetry_ingested`` (live dashboard, alert
   evaluation) and ``device_status_changed`` for devices that came back online.
"""

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, connection, transaction
from django.db.models import Q

from devices.formats import metric_new
from devices.models import Device, Metric
from devices.services.telemetry_payload import Message, payload_parse
from devices.signals import device_status_changed, telemetry_ingested
from factory.metrics import count_stored

logger = logging.getLogger(__name__)
CHUNK = 5000
# Device.last_seen_at is written at most once per this interval per device: a device posting
# several times a second must not turn every request into an extra UPDATE.
LAST_SEEN_RESOLUTION = timedelta(seconds=1)

_metric_ids: dict[str, int] = {}
# MySQL/MariaDB: 1213 deadlock (the transaction was rolled back), 1205 lock wait timeout.
_RETRYABLE = (1213, 1205)
DEADLOCK_ATTEMPTS = 4
_TOUCHED = ("last_seen_at", "online", "state", "state_since")
# Receives the after-commit work of one commit (a callable without arguments) and runs it later.
Deferrer = Callable[[Callable[[], None]], None]


@dataclass(slots=True)
class IngestItem:
    device: Device
    messages: list[Message]


def telemetry_parse(body: bytes, *, now: datetime) -> list[Message]:
    """Validate a payload against CONTRACT.md with the configured limits. Raises ``PayloadError``."""
    oldest = now - timedelta(days=settings.TELEMETRY_RETENTION_RAW_DAYS)
    return payload_parse(body, now=now, oldest=oldest, max_batch=settings.TELEMETRY_MAX_BATCH)


def metric_ids(names) -> dict[str, int]:
    """Map metric names to ids, creating unknown names (with the display name, unit and precision of
    a known name: ``devices.formats.METRIC_DEFAULTS``). Cached per process once committed."""
    missing = [name for name in names if name not in _metric_ids]
    if missing:
        Metric.objects.bulk_create([metric_new(name) for name in missing], ignore_conflicts=True)
        found = dict(Metric.objects.filter(name__in=missing).values_list("name", "id"))
        if connection.in_atomic_block:
            # The rows may still roll back with the caller's transaction: cache them only after commit.
            transaction.on_commit(lambda: _metric_ids.update(found))
            return {name: _metric_ids.get(name) or found[name] for name in names}
        _metric_ids.update(found)
    return {name: _metric_ids[name] for name in names}


_SQL = {
    "mysql": {
        "reading": "INSERT IGNORE INTO telemetry_reading (device_id, metric_id, ts, value) VALUES (%s, %s, %s, %s)",
        "state": "INSERT IGNORE INTO telemetry_machine_state (device_id, ts, state) VALUES (%s, %s, %s)",
        # MySQL evaluates ON DUPLICATE KEY assignments left to right: value must be set before ts.
        "latest": "INSERT INTO telemetry_latest (device_id, metric_id, ts, value) VALUES (%s, %s, %s, %s) "
        "ON DUPLICATE KEY UPDATE value = IF(VALUES(ts) > ts, VALUES(value), value), ts = GREATEST(ts, VALUES(ts))",
        # Placeholders only: mysqlclient folds an executemany into one multi-row INSERT only then.
        "pending": "INSERT INTO telemetry_rollup_pending (device_id, bucket, generation) VALUES (%s, %s, %s) "
        "ON DUPLICATE KEY UPDATE generation = generation + 1",
    },
    "sqlite": {
        "reading": "INSERT OR IGNORE INTO telemetry_reading (device_id, metric_id, ts, value) VALUES (%s, %s, %s, %s)",
        "state": "INSERT OR IGNORE INTO telemetry_machine_state (device_id, ts, state) VALUES (%s, %s, %s)",
        "latest": "INSERT INTO telemetry_latest (device_id, metric_id, ts, value) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (device_id, metric_id) DO UPDATE SET "
        "value = CASE WHEN excluded.ts > telemetry_latest.ts THEN excluded.value ELSE telemetry_latest.value END, "
        "ts = MAX(telemetry_latest.ts, excluded.ts)",
        "pending": "INSERT INTO telemetry_rollup_pending (device_id, bucket, generation) VALUES (%s, %s, %s) "
        "ON CONFLICT (device_id, bucket) DO UPDATE SET generation = generation + 1",
    },
}


def _sql(kind: str) -> str:
    return _SQL[connection.vendor][kind]


def _executemany(cursor, sql: str, rows: list) -> None:
    for start in range(0, len(rows), CHUNK):
        cursor.executemany(sql, rows[start : start + CHUNK])


def _insert_numbers(cursor, sql: str, rows: list[tuple[int, int, str, float]]) -> None:
    """``_executemany`` for ``(device_id, metric_id, ts, value)`` rows, with the SQL written here.

    mysqlclient quotes every value of an ``executemany`` in Python, a large share of the MQTT
    bridge's time (docs/benchmarks.md). These rows hold only two ids, a timestamp string
    from ``_datetime_adapter`` and a float, so they are formatted directly (integers, ``repr`` of the
    float: nothing from a device reaches the SQL as text). SQLite keeps ``executemany`` (its own is in C).
    """
    if connection.vendor != "mysql":
        _executemany(cursor, sql, rows)
        return
    head, _, tail = sql.partition(" VALUES (%s, %s, %s, %s)")
    for start in range(0, len(rows), CHUNK):
        values = ",".join([f"({d:d},{m:d},'{ts}',{float(v)!r})" for d, m, ts, v in rows[start : start + CHUNK]])
        cursor.execute(f"{head} VALUES {values}{tail}")


def _datetime_adapter():
    """A fast ``adapt_datetimefield_value`` for aware datetimes (every message's ts is aware).

    Both backends store ``str(make_naive(value, connection.timezone))``; Django's own function
    checks settings and awareness once per call, a noticeable share of a large batch.
    """
    adapt = connection.ops.adapt_datetimefield_value
    if not settings.USE_TZ:
        return adapt
    tz = connection.timezone

    def fast(value: datetime) -> str:
        if value.tzinfo is None:
            return adapt(value)  # refused as Django refuses it
        return str(value.astimezone(tz).replace(tzinfo=None))

    return fast


def telemetry_store(
    items: list[IngestItem], *, received_at: datetime, defer_hooks: Deferrer | None = None, transport: str = "other"
) -> int:
    """Store already-validated messages of one or more devices atomically; return the message count.

    ``transport`` (``http``, ``mqtt``, ``websocket``) labels the metrics counted once the batch
    has committed (``factory_ingest_messages_total``, ``factory_ingest_readings_total``).

    Idempotent for re-sent readings (same device, metric and ts are ignored). Sends the
    after-commit signals described in the module docstring: in the committing thread, or, with
    ``defer_hooks``, by handing them (one callable per commit) to ``defer_hooks`` on commit; the
    MQTT bridge runs them in its own thread, in commit order, while it stores the next batch.

    Concurrent writers (HTTP workers, the MQTT bridge) take their row locks in one order (device,
    then metric), which avoids most deadlocks; InnoDB may still pick a victim (gap locks), and
    then, outside a caller's transaction, the whole statement set is re-run: every write is
    idempotent, and the devices' in-memory fields are restored first.
    """
    items = sorted(items, key=lambda item: item.device.pk)
    if connection.in_atomic_block:  # the caller's transaction is lost with a deadlock: it retries
        return _store_once(items, received_at, defer_hooks, transport)
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        saved = [(item.device, {f: getattr(item.device, f) for f in _TOUCHED}) for item in items]
        try:
            return _store_once(items, received_at, defer_hooks, transport)
        except OperationalError as exc:
            if exc.args[0] not in _RETRYABLE or attempt == DEADLOCK_ATTEMPTS:
                raise
            for device, fields in saved:
                for name, value in fields.items():
                    setattr(device, name, value)
            logger.info("telemetry: %s, storing the batch again (attempt %s)", exc.args[1], attempt + 1)
            time.sleep(random.uniform(0.005, 0.02 * attempt))  # noqa: S311 - jitter, not a secret
    raise AssertionError("unreachable")


def _store_once(items: list[IngestItem], received_at: datetime, defer_hooks: Deferrer | None, transport: str) -> int:
    names = {name for item in items for message in item.messages for name in message.values}
    ids = metric_ids(sorted(names))
    adapt = _datetime_adapter()
    readings, states, pending, latest, current_state, context = [], [], set(), {}, {}, []
    for item in items:
        device_id = item.device.pk
        last_state, since = item.device.state, item.device.state_since
        for message in sorted(item.messages, key=lambda m: m.ts):
            ts = adapt(message.ts)
            for name, value in message.values.items():
                readings.append((device_id, ids[name], ts, value))
                key = (device_id, name)
                # Strictly newer only: for a re-sent ts the first value wins, as in telemetry_reading.
                if key not in latest or latest[key][0] < message.ts:
                    latest[key] = (message.ts, value)
            if message.values:
                pending.add((device_id, ts[:16] + ":00"))  # its minute: "YYYY-MM-DD HH:MM:00"
            if message.product is not None or message.order is not None:
                context.append((item.device, message))
            if message.state is None:
                continue
            if since is not None and message.ts <= since:
                # Late: kept for the timeline (its stored neighbours are unknown here, and repeats
                # are harmless), but it says nothing about the current state. At ``since`` itself
                # the row exists already and the first one wins.
                states.append((device_id, ts, message.state))
            elif message.state != last_state:
                states.append((device_id, ts, message.state))
                last_state, since = message.state, message.ts
                current_state[device_id] = (message.state, message.ts)
    readings.sort()  # primary-key order: the lock order every writer shares
    # No savepoint inside a caller's transaction (the MQTT bridge's): a failure fails the caller's
    # whole transaction anyway, and SAVEPOINT plus RELEASE were two more round trips per batch.
    with transaction.atomic(savepoint=False):
        with connection.cursor() as cursor:
            _insert_numbers(cursor, _sql("reading"), readings)
            latest_rows = sorted((d, ids[n], adapt(ts), v) for (d, n), (ts, v) in latest.items())
            _insert_numbers(cursor, _sql("latest"), latest_rows)
            _executemany(cursor, _sql("pending"), [(device_id, minute, 1) for device_id, minute in sorted(pending)])
            _executemany(cursor, _sql("state"), states)
        came_online = _touch_devices(items, received_at, current_state)
        if context:
            # Production context (CONTRACT.md "product"/"order"): runs start and end in this transaction.
            from production.services.context import context_record

            context_record(entries=context, received_at=received_at)
        hooks = partial(_after_commit, items, received_at, came_online)
        transaction.on_commit(hooks if defer_hooks is None else partial(defer_hooks, hooks))
        stored = sum(len(item.messages) for item in items)
        transaction.on_commit(partial(count_stored, transport, stored, len(readings)))  # once per batch
    return stored


def _touch_devices(items: list[IngestItem], received_at: datetime, current_state: dict) -> list[int]:
    """Update last-seen, online flag and current machine state; return devices that came online.

    ``current_state`` maps a device to the (state, since) its messages ended in, where ``since``
    is when that state began; it replaces the device's state unless older (late data).
    """
    came_online = []
    # One UPDATE for every device whose last-seen time is due (a batch of the MQTT bridge holds
    # dozens of devices). ``pk IN (...)`` locks their rows in key order, like every other writer;
    # devices with another change below are included, so those changes take no lock out of order.
    due = {
        item.device.pk
        for item in items
        if item.device.last_seen_at is None
        or received_at - item.device.last_seen_at >= LAST_SEEN_RESOLUTION
        or item.device.pk in current_state
        or not item.device.online
    }
    if due:
        Device.objects.filter(pk__in=due).update(last_seen_at=received_at)
    for item in items:
        device = item.device
        fields = {"last_seen_at": received_at} if device.pk in due else {}
        state, since = current_state.get(device.pk, (None, None))
        if state is not None and (device.state_since is None or since >= device.state_since):
            # Conditional: a concurrent writer (another web process, the bridge) may have stored a
            # newer state since this device row was read; an older one must not replace it.
            newer_or_none = Q(state_since__isnull=True) | Q(state_since__lte=since)
            if Device.objects.filter(newer_or_none, pk=device.pk).update(state=state, state_since=since):
                fields.update(state=state, state_since=since)
        if not device.online and Device.objects.filter(pk=device.pk, online=False).update(online=True):
            came_online.append(device.pk)
        for name, value in fields.items():
            setattr(device, name, value)
        device.online = True
    return came_online


def _after_commit(items, received_at, came_online) -> None:
    """Notify listeners (live dashboard, alert evaluation). Never fails the committed ingest."""
    for signal, kwargs in (
        (device_status_changed, {"device_ids": came_online, "online": True, "at": received_at}),
        (telemetry_ingested, {"items": items, "received_at": received_at}),
    ):
        if signal is device_status_changed and not came_online:
            continue
        for receiver, result in signal.send_robust(sender=Device, **kwargs):
            if isinstance(result, Exception):
                logger.warning("%s receiver %s failed: %s", signal, receiver, type(result).__name__)


_redis: dict[str, object] = {}


def _redis_client():
    """One client (and connection pool) per ``REDIS_URL``, so a changed setting takes effect."""
    client = _redis.get(settings.REDIS_URL)
    if client is None:
        import redis

        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=0.5, socket_connect_timeout=0.5)
        _redis[settings.REDIS_URL] = client
    return client


def _window_counts(increments: dict[str, int], ttl: int) -> dict[str, int]:
    """Add to several window counters at once and return their new totals (one Redis round trip)."""
    if settings.REDIS_URL:
        pipe = _redis_client().pipeline(transaction=False)
        for key, amount in increments.items():
            key = cache.make_key(key)  # the cache's namespace (KEY_PREFIX, version), as the other branch
            pipe.incrby(key, amount)
            pipe.expire(key, ttl, nx=True)
        totals = pipe.execute()[::2]
        return dict(zip(increments, totals, strict=True))
    result = {}
    for key, amount in increments.items():
        cache.add(key, 0, ttl)
        result[key] = cache.incr(key, amount)
    return result


def rate_limit_many(device_ids: list[int]) -> list[int | None]:
    """Per-device request limit (``TELEMETRY_RATE_LIMIT`` per second, over 10-second windows).

    ``device_ids`` has one entry per request. Returns, per request, None when it may proceed or
    the seconds to wait. Counted in Redis when configured, so every web process sees the same
    count; fails open when the counter store is down (never blocks ingest on it).
    """
    window = 10
    limit = settings.TELEMETRY_RATE_LIMIT * window
    if limit <= 0 or not device_ids:
        return [None] * len(device_ids)
    now = int(time.time())
    wanted: dict[int, int] = {}
    for device_id in device_ids:
        wanted[device_id] = wanted.get(device_id, 0) + 1
    keys = {device_id: f"telemetry:rate:{device_id}:{now // window}" for device_id in wanted}
    try:
        totals = _window_counts({keys[d]: n for d, n in wanted.items()}, window * 2)
    except Exception:
        return [None] * len(device_ids)
    allowed = {d: max(0, limit - (totals[keys[d]] - n)) for d, n in wanted.items()}
    retry_after = window - now % window
    results = []
    for device_id in device_ids:
        if allowed[device_id] > 0:
            allowed[device_id] -= 1
            results.append(None)
        else:
            results.append(retry_after)
    return results


def rate_limit_retry_after(device_id: int) -> int | None:
    """``rate_limit_many`` for one request."""
    return rate_limit_many([device_id])[0]
