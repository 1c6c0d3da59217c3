"""Telemetry reads: history (raw or bucketed), CSV export chunks, latest values, state timeline, counters.

Callers scope the device first (``accounts.selectors.scope_to_plants``); these functions read
one device's (or a list of visible devices') rows by the clustered keys of the telemetry tables.

Buckets are whole: a bucket is returned when it intersects ``[start, end)`` and always aggregates
its entire interval. ``1m``, ``5m`` and ``1h`` buckets are UTC-aligned; ``1d`` buckets are
calendar days of the plant's time zone (23 or 25 hours on DST days) and carry that zone's offset.
Day bucketing happens here in Python, never in SQL, so it does not depend on MariaDB's time zone
tables (STACK.md "Gotchas").
"""

import bisect
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.roles import PERM_MANAGE
from accounts.selectors import scope_to_plants
from devices.models import (
    Device,
    LatestValue,
    MachineState,
    Metric,
    Plant,
    ProvisioningRequest,
    TelemetryReading,
    TelemetryRollup1h,
    TelemetryRollup1m,
)

BUCKETS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
BUCKET_CHOICES = ("raw", "1m", "5m", "1h", "1d", "auto")
AUTO_MAX_POINTS = 1500
RAW_MAX_POINTS = 20000  # per JSON response; exports stream any number
BUCKET_MAX_POINTS = 20000  # per JSON response
EXPORT_MAX_BUCKETS = 1_000_000  # per CSV export (e.g. a year of 1-minute buckets is 525,600)
CHUNK_POINTS = 5000  # rows per query when streaming an export
HOUR = timedelta(hours=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIELDS = ("bucket", "min", "max", "sum", "count", "last", "last_ts")


class HistoryError(ValueError):
    """The query cannot be answered as asked; ``field`` names the query parameter to change."""

    def __init__(self, message: str, field: str = "bucket"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Bucket:
    ts: datetime
    min: float
    max: float
    sum: float
    count: int
    last: float
    last_ts: datetime

    @property
    def avg(self) -> float:
        return self.sum / self.count

    def as_dict(self) -> dict:
        return {
            "ts": self.ts,
            "min": self.min,
            "max": self.max,
            "avg": self.avg,
            "count": self.count,
            "last": self.last,
        }


def bucket_for_auto(start: datetime, end: datetime) -> str:
    """The finest rollup resolution that answers ``[start, end)`` in at most ~1,500 points."""
    span = end - start
    for name in ("1m", "5m", "1h"):
        if span / BUCKETS[name] <= AUTO_MAX_POINTS:
            return name
    return "1d"


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    """The instant (UTC) a plant-local calendar day starts; a midnight skipped by DST starts at the jump."""
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)


def bucket_floor(ts: datetime, bucket: str, tz: ZoneInfo) -> datetime:
    """Start (UTC) of the ``bucket`` holding ``ts``: a UTC minute, 5 minutes or hour, or a plant-local day."""
    if bucket == "1d":
        return _midnight(ts.astimezone(tz).date(), tz)
    ts = ts.astimezone(UTC)
    return ts - (ts - EPOCH) % BUCKETS[bucket]


def _bucket_after(start: datetime, bucket: str, tz: ZoneInfo, n: int = 1) -> datetime:
    """The start of the ``n``-th bucket after the one starting at ``start``."""
    if bucket == "1d":
        return _midnight(start.astimezone(tz).date() + timedelta(days=n), tz)
    return start + BUCKETS[bucket] * n


def _bucket_ceil(ts: datetime, bucket: str, tz: ZoneInfo) -> datetime:
    floor = bucket_floor(ts, bucket, tz)
    return floor if floor == ts else _bucket_after(floor, bucket, tz)


def bucket_count(start: datetime, end: datetime, bucket: str, tz: ZoneInfo) -> int:
    """How many whole buckets intersect ``[start, end)`` (computed, no query)."""
    lo, hi = bucket_floor(start, bucket, tz), _bucket_ceil(end, bucket, tz)
    if bucket == "1d":
        return (hi.astimezone(tz).date() - lo.astimezone(tz).date()).days
    return (hi - lo) // BUCKETS[bucket]


def device_metrics(device: Device) -> dict[str, Metric]:
    """Metrics ``device`` has ever reported (it has a latest value for each), by name. One query."""
    reported = LatestValue.objects.filter(device=device).values("metric_id")
    return {metric.name: metric for metric in Metric.objects.filter(pk__in=reported)}


def metric_list_for(user) -> QuerySet[Metric]:
    """Metrics ``user`` may see: staff see all (they maintain names, units and precisions for every
    plant); anyone else those a device of their plants has reported, so another plant's metric
    names do not show. The plant list is a subquery: one query."""
    if user.is_authenticated and user.is_active and (user.is_staff or user.is_superuser):
        return Metric.objects.all()
    reported = scope_to_plants(LatestValue.objects.all(), user, plant_field="device__plant").values("metric_id")
    return Metric.objects.filter(pk__in=reported)


def plant_metrics(plant_id: int) -> QuerySet[Metric]:
    """Metrics the plant's devices have reported (each has a latest value), for the page formats."""
    return Metric.objects.filter(pk__in=LatestValue.objects.filter(device__plant_id=plant_id).values("metric_id"))


def _raw_rows(device: Device, metric: Metric, start: datetime, end: datetime):
    return (
        TelemetryReading.objects.filter(device=device, metric=metric, ts__gte=start, ts__lt=end)
        .order_by("ts")
        .values_list("ts", "value")
    )


def telemetry_raw(device: Device, metric: Metric, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    """Raw ``(ts, value)`` readings in ``[start, end)``, oldest first.

    Raises ``HistoryError`` (on ``bucket``) beyond ``RAW_MAX_POINTS``; one clustered range scan.
    """
    rows = list(_raw_rows(device, metric, start, end)[: RAW_MAX_POINTS + 1])
    if len(rows) > RAW_MAX_POINTS:
        raise HistoryError(
            f"More than {RAW_MAX_POINTS} raw points between start and end: narrow the range, ask for a bucket "
            "(1m, 5m, 1h, 1d or auto) or export the raw points as CSV."
        )
    return rows


def telemetry_raw_chunks(
    device: Device, metric: Metric, start: datetime, end: datetime, *, size: int = CHUNK_POINTS
) -> Iterator[list[tuple[datetime, float]]]:
    """Raw readings of ``[start, end)`` oldest first, ``size`` per query (keyset pages): for streamed exports."""
    rows = list(_raw_rows(device, metric, start, end)[:size])
    while rows:
        yield rows
        if len(rows) < size:
            return
        rows = list(_raw_rows(device, metric, start, end).filter(ts__gt=rows[-1][0])[:size])


def _merge(rows, key: Callable[[datetime], datetime | None]) -> list[Bucket]:
    """Merge rollup rows into coarser buckets named by ``key(bucket)`` (None: outside the range)."""
    merged: dict[datetime, list] = {}
    for bucket, mn, mx, total, count, last, last_ts in rows:
        target = key(bucket)
        if target is None:
            continue
        agg = merged.get(target)
        if agg is None:
            merged[target] = [mn, mx, total, count, last, last_ts]
            continue
        agg[0], agg[1], agg[2], agg[3] = min(agg[0], mn), max(agg[1], mx), agg[2] + total, agg[3] + count
        if last_ts >= agg[5]:
            agg[4], agg[5] = last, last_ts
    return [Bucket(ts, *agg) for ts, agg in sorted(merged.items())]


def telemetry_buckets(
    device: Device, metric: Metric, start: datetime, end: datetime, bucket: str, tz: ZoneInfo
) -> list[Bucket]:
    """The whole ``bucket``s intersecting ``[start, end)``, oldest first, read from the rollup tables.

    ``1m``/``1h`` read their table, ``5m`` merges 1-minute rows, ``1d`` merges 1-hour rows into
    calendar days of ``tz`` (see ``_day_buckets``). One or two range scans; raises ``HistoryError``
    for an unknown bucket. Read-only.
    """
    if bucket == "1d":
        return _day_buckets(device, metric, start, end, tz)
    if bucket not in ("1m", "5m", "1h"):
        raise HistoryError(f"Unknown bucket {bucket!r}; use raw, 1m, 5m, 1h, 1d or auto.")
    model = TelemetryRollup1h if bucket == "1h" else TelemetryRollup1m
    lo, hi = bucket_floor(start, bucket, tz), _bucket_ceil(end, bucket, tz)
    rows = model.objects.filter(device=device, metric=metric, bucket__gte=lo, bucket__lt=hi).order_by("bucket")
    if bucket == "5m":
        return _merge(rows.values_list(*_FIELDS), lambda b: bucket_floor(b, "5m", tz))
    return [Bucket(*row) for row in rows.values_list(*_FIELDS)]


def _day_buckets(device: Device, metric: Metric, start: datetime, end: datetime, tz: ZoneInfo) -> list[Bucket]:
    """Plant-local calendar days from 1-hour rollups.

    Where the zone's midnight is not a whole UTC hour (Asia/Kolkata +05:30), the UTC hour holding
    it belongs to two days: those hours are read from the 1-minute table instead, as far as it
    reaches back (``TELEMETRY_RETENTION_1M_DAYS``); older ones count in the day they start in.
    """
    edges = [bucket_floor(start, "1d", tz)]
    while edges[-1] < end:
        edges.append(_bucket_after(edges[-1], "1d", tz))
    hours = TelemetryRollup1h.objects.filter(
        device=device, metric=metric, bucket__gte=bucket_floor(edges[0], "1h", tz), bucket__lt=edges[-1]
    )
    rows = list(hours.values_list(*_FIELDS))
    oldest_minute = timezone.now() - timedelta(days=settings.TELEMETRY_RETENTION_1M_DAYS + 1)
    split = {bucket_floor(edge, "1h", tz) for edge in edges if edge != bucket_floor(edge, "1h", tz)}
    split = sorted(hour for hour in split if hour >= oldest_minute)
    if split:
        ranges = Q()
        for hour in split:
            ranges |= Q(bucket__gte=hour, bucket__lt=hour + HOUR)
        minutes = list(TelemetryRollup1m.objects.filter(ranges, device=device, metric=metric).values_list(*_FIELDS))
        covered = {bucket_floor(row[0], "1h", tz) for row in minutes}
        rows = [row for row in rows if row[0] not in covered] + minutes

    def day_of(bucket: datetime) -> datetime | None:
        index = bisect.bisect_right(edges, bucket) - 1
        return edges[index] if 0 <= index < len(edges) - 1 else None

    return [replace(b, ts=b.ts.astimezone(tz)) for b in _merge(rows, day_of)]


def telemetry_bucket_chunks(
    device: Device, metric: Metric, start: datetime, end: datetime, bucket: str, tz: ZoneInfo
) -> Iterator[list[Bucket]]:
    """``telemetry_buckets`` in windows of ``CHUNK_POINTS`` whole buckets: for streamed exports.

    Windows end on bucket boundaries, so merging inside each window is exact.
    """
    lo = bucket_floor(start, bucket, tz)
    while lo < end:
        hi = _bucket_after(lo, bucket, tz, CHUNK_POINTS)
        points = telemetry_buckets(device, metric, lo, min(hi, end), bucket, tz)
        if points:
            yield points
        lo = hi


def _resolve(start: datetime, end: datetime, bucket: str, tz: ZoneInfo, max_buckets: int) -> str:
    """The concrete bucket for ``bucket`` (``auto`` chosen by span); raises ``HistoryError`` past ``max_buckets``."""
    name = bucket_for_auto(start, end) if bucket == "auto" else bucket
    if name != "raw" and bucket_count(start, end, name, tz) > max_buckets:
        raise HistoryError(
            f"{name} buckets between start and end make more than {max_buckets} points: "
            "use a coarser bucket (or auto) or a shorter range."
        )
    return name


def telemetry_history(
    device: Device, metric: Metric, start: datetime, end: datetime, bucket: str, tz: ZoneInfo
) -> dict:
    """The history API body: ``{"metric", "bucket", "start", "end", "points"}`` for ``[start, end)``.

    ``bucket`` is ``raw``, ``1m``, ``5m``, ``1h``, ``1d`` or ``auto`` (``bucket_for_auto``; the body
    names the one chosen). Raw points are ``{"ts", "value"}``, buckets ``{"ts", "min", "max",
    "avg", "count", "last"}``. Raises ``HistoryError`` past ``RAW_MAX_POINTS`` or
    ``BUCKET_MAX_POINTS``. Read-only, one to three queries.
    """
    name = _resolve(start, end, bucket, tz, BUCKET_MAX_POINTS)
    if name == "raw":
        points = [{"ts": ts, "value": value} for ts, value in telemetry_raw(device, metric, start, end)]
    else:
        points = [b.as_dict() for b in telemetry_buckets(device, metric, start, end, name, tz)]
    return {"metric": metric.name, "bucket": name, "start": start, "end": end, "points": points}


def telemetry_export(
    device: Device, metric: Metric, start: datetime, end: datetime, bucket: str, tz: ZoneInfo
) -> tuple[str, Iterator[list[tuple]]]:
    """``(bucket, chunks)`` for a streamed export of the same query as ``telemetry_history``.

    Each chunk is a list of rows: ``(ts, value)`` for raw, ``(ts, min, max, avg, count, last)``
    for buckets. Raw exports have no point limit (retention bounds them); bucketed ones stop at
    ``EXPORT_MAX_BUCKETS`` with ``HistoryError``, raised here, before the first chunk is read.
    """
    name = _resolve(start, end, bucket, tz, EXPORT_MAX_BUCKETS)
    if name == "raw":
        return name, telemetry_raw_chunks(device, metric, start, end)
    chunks = telemetry_bucket_chunks(device, metric, start, end, name, tz)
    return name, ([(b.ts, b.min, b.max, b.avg, b.count, b.last) for b in chunk] for chunk in chunks)


def telemetry_export_all(
    device: Device, start: datetime, end: datetime, bucket: str, tz: ZoneInfo
) -> tuple[str, Iterator[list[tuple]]]:
    """``(bucket, chunks)`` exporting every metric ``device`` reports (``device_metrics``) over ``[start, end)``.

    Rows are ``telemetry_export``'s with the metric name after the timestamp: ``(ts, metric,
    value)`` or ``(ts, metric, min, max, avg, count, last)``, metric by metric (by name), each
    oldest first, so each metric's rows equal its own export. ``auto`` resolves once for all (it
    depends on the range only). Raises ``HistoryError`` before the first chunk, as the single export.
    """
    name = _resolve(start, end, bucket, tz, EXPORT_MAX_BUCKETS)
    metrics = sorted(device_metrics(device).values(), key=lambda m: m.name)

    def chunks():
        for metric in metrics:
            for chunk in telemetry_export(device, metric, start, end, name, tz)[1]:
                yield [(row[0], metric.name, *row[1:]) for row in chunk]

    return name, chunks()


# Current values live in telemetry_latest (written in the ingest transaction). Readers cache what
# they read for this long, so dashboards polling a plant hit the cache, not the database, while the
# hot ingest path pays no cache round trip.
LATEST_CACHE_TTL = 2


def latest_cache_key(device_id: int) -> str:
    """The cache key under which ``latest_values`` keeps one device's current values."""
    return f"telemetry:latest:{device_id}"


def latest_values(device_ids: list[int]) -> dict[int, dict[str, dict]]:
    """``{device_id: {metric: {"ts", "value"}}}`` from the cache, else one table query for the missing devices.

    The cache holds each device's values for ``LATEST_CACHE_TTL`` seconds (ingest does not touch
    it), so a reader may see values up to that old. Works without the cache (Redis down).
    """
    try:
        cached = cache.get_many([latest_cache_key(pk) for pk in device_ids])
    except Exception:  # Redis down: the table has the same data
        cached = {}
    result = {pk: cached[latest_cache_key(pk)] for pk in device_ids if latest_cache_key(pk) in cached}
    missing = [pk for pk in device_ids if pk not in result]
    if missing:
        for device_id, name, ts, value in LatestValue.objects.filter(device_id__in=missing).values_list(
            "device_id", "metric__name", "ts", "value"
        ):
            result.setdefault(device_id, {})[name] = {"ts": ts, "value": value}
        with contextlib.suppress(Exception):  # best effort, see above
            cache.set_many({latest_cache_key(pk): result.get(pk, {}) for pk in missing}, LATEST_CACHE_TTL)
    return {pk: result.get(pk, {}) for pk in device_ids}


def device_latest_list(devices: list[Device], *, now: datetime | None = None) -> list[dict]:
    """Per device: ``{"device", "uid", "state", "state_since", "online", "last_seen_at", "values"}``.

    ``values`` comes from ``latest_values`` (at most one query for all devices, none when cached);
    ``online`` is last-seen against three expected intervals at ``now``. Read-only.
    """
    now = now or timezone.now()
    values = latest_values([device.pk for device in devices])
    return [
        {
            "device": device.pk,
            "uid": device.uid,
            "state": device.state,
            "state_since": device.state_since,
            "online": device.is_online(now),
            "last_seen_at": device.last_seen_at,
            "values": dict(sorted(values[device.pk].items())),
        }
        for device in devices
    ]


# What an overview tile (and the plant header) shows for a device: a machine its state, a sensor or
# gateway (no machine state) online or offline. Any device not heard from is offline.
MACHINE_STATES = ("running", "idle", "setup", "down", "planned_stop", "offline", "unknown")
SENSOR_STATES = ("online", "offline")


def tile_state(device: Device, now: datetime) -> str:
    """``offline`` when not heard from within three expected intervals; else a machine's state
    (``unknown`` before its first one), a sensor's or gateway's ``online``."""
    if not device.is_online(now):
        return "offline"
    if device.kind != Device.Kind.MACHINE:
        return "online"
    return device.state or "unknown"


def plant_devices_shown(
    plant: Plant, *, line_id: int | None = None, group_id: int | None = None
) -> tuple[list[Device], list[Device]]:
    """Every device of ``plant`` (with its line; in the lines' order, then by uid), and those of them
    on line ``line_id`` and in group ``group_id`` (each filter when given). One query, two with a group."""
    everything = list(
        Device.objects.filter(plant=plant).select_related("line").order_by("line__position", "line__name", "uid")
    )
    shown = [d for d in everything if line_id is None or d.line_id == line_id]
    if group_id is not None:
        members = set(Device.objects.filter(plant=plant, groups__pk=group_id).values_list("pk", flat=True))
        shown = [d for d in shown if d.pk in members]
    return everything, shown


def plant_state_counts(devices: list[Device], now: datetime) -> dict[str, dict[str, int]]:
    """``{"machines": {state: n, …}, "sensors": {"online": n, "offline": n}}`` by ``tile_state``;
    gateways count with the sensors. Every state is present (0 when none). No query."""
    counts = {"machines": dict.fromkeys(MACHINE_STATES, 0), "sensors": dict.fromkeys(SENSOR_STATES, 0)}
    for device in devices:
        group = "machines" if device.kind == Device.Kind.MACHINE else "sensors"
        state = tile_state(device, now)
        counts[group][state if state in counts[group] else "unknown"] += 1
    return counts


def state_timeline(device: Device, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """State changes in ``[start, end)``, preceded by the state in force at ``start`` (if known)."""
    before = MachineState.objects.filter(device=device, ts__lt=start).order_by("-ts").values_list("ts", "state")[:1]
    inside = (
        MachineState.objects.filter(device=device, ts__gte=start, ts__lt=end).order_by("ts").values_list("ts", "state")
    )
    timeline = [(start, state) for _, state in before] + list(inside)
    collapsed = []
    for ts, state in timeline:
        if not collapsed or collapsed[-1][1] != state:
            collapsed.append((ts, state))
    return collapsed


def counter_increments(values: Iterator[tuple[datetime, float]], previous: float | None = None) -> float:
    """Pieces produced by a cumulative counter (CONTRACT.md): a drop means a reset, counting from zero."""
    total = 0.0
    for _, value in values:
        if previous is None:
            previous = value
            continue
        total += value - previous if value >= previous else value
        previous = value
    return total


def provisioning_pending_count(plant_id: int) -> int:
    """How many devices wait for approval in the plant (the plant bar's badge for its admins)."""
    return ProvisioningRequest.objects.filter(key__plant_id=plant_id, status=ProvisioningRequest.Status.PENDING).count()


def provisioning_pending_list_for(user, plant: Plant) -> QuerySet[ProvisioningRequest]:
    """The plant's devices waiting for approval, oldest first, if ``user`` administers the plant
    (empty otherwise): the approvals page's list, with each request's key and the key's line."""
    requests = ProvisioningRequest.objects.filter(key__plant=plant, status=ProvisioningRequest.Status.PENDING)
    scoped = scope_to_plants(requests, user, PERM_MANAGE, plant_field="key__plant")
    return scoped.select_related("key__line").order_by("created_at", "pk")
