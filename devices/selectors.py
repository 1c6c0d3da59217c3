"""Telemetry reads: history (raw or bucketed), latest values, machine state timeline, counters.

Callers scope the device first (``accounts.selectors.scope_to_plants``); these functions read
one device's (or a list of visible devices') rows by the clustered keys of the telemetry tables.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.core.cache import cache

from devices.models import Device, LatestValue, MachineState, Metric, TelemetryReading, TelemetryRollup1h, TelemetryRollup1m
from devices.services.ingest import LATEST_CACHE_TTL, latest_cache_key

BUCKETS = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
AUTO_MAX_POINTS = 1500
RAW_MAX_POINTS = 20000


class HistoryError(ValueError):
    """The query cannot be answered as asked (the message says how to ask instead)."""


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
        return {"ts": self.ts, "min": self.min, "max": self.max, "avg": self.avg, "count": self.count, "last": self.last}


def bucket_for_auto(start: datetime, end: datetime) -> str:
    """The finest rollup resolution that answers ``[start, end)`` in at most ~1,500 points."""
    span = end - start
    for name in ("1m", "5m", "1h"):
        if span / BUCKETS[name] <= AUTO_MAX_POINTS:
            return name
    return "1d"


def telemetry_raw(device: Device, metric: Metric, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    rows = list(
        TelemetryReading.objects.filter(device=device, metric=metric, ts__gte=start, ts__lt=end)
        .order_by("ts")
        .values_list("ts", "value")[: RAW_MAX_POINTS + 1]
    )
    if len(rows) > RAW_MAX_POINTS:
        raise HistoryError(f"More than {RAW_MAX_POINTS} raw points: narrow the range or ask for bucket=auto.")
    return rows


def _merge(rows, key) -> list[Bucket]:
    """Merge rollup rows (ordered by bucket) into coarser buckets named by ``key(bucket)``."""
    merged: dict[datetime, list] = {}
    for bucket, mn, mx, total, count, last, last_ts in rows:
        target = key(bucket)
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
    """Bucketed history from the rollup tables.

    ``1m``/``1h`` read their table; ``5m`` merges 1-minute rows; ``1d`` merges 1-hour rows into
    calendar days of ``tz`` (so a DST day has 23 or 25 hours), or 1-minute rows for zones whose
    offset is not a whole number of hours, where an hour bucket would straddle midnight.
    """
    fields = ("bucket", "min", "max", "sum", "count", "last", "last_ts")
    if bucket == "1d":
        start = datetime.combine(start.astimezone(tz).date(), datetime.min.time(), tzinfo=tz)
        whole_hours = all(
            (start + timedelta(days=d)).utcoffset() % timedelta(hours=1) == timedelta(0) for d in (0, 180)
        )
        model = TelemetryRollup1h if whole_hours else TelemetryRollup1m
        rows = model.objects.filter(device=device, metric=metric, bucket__gte=start, bucket__lt=end).order_by("bucket")
        return _merge(rows.values_list(*fields), lambda b: datetime.combine(b.astimezone(tz).date(), datetime.min.time(), tzinfo=tz))
    if bucket == "1h":
        model, key = TelemetryRollup1h, (lambda b: b)
    elif bucket == "5m":
        model, key = TelemetryRollup1m, (lambda b: b.replace(minute=b.minute - b.minute % 5))
    elif bucket == "1m":
        model, key = TelemetryRollup1m, (lambda b: b)
    else:
        raise HistoryError(f"Unknown bucket {bucket!r}; use raw, 1m, 5m, 1h, 1d or auto.")
    rows = model.objects.filter(device=device, metric=metric, bucket__gte=start, bucket__lt=end).order_by("bucket")
    return _merge(rows.values_list(*fields), key)


def latest_values(device_ids: list[int]) -> dict[int, dict[str, list]]:
    """``{device_id: {metric: [iso_ts, value]}}`` from the cache, falling back to the table per missing device."""
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
            result.setdefault(device_id, {})[name] = [ts.isoformat(), value]
        try:
            cache.set_many({latest_cache_key(pk): result.get(pk, {}) for pk in missing}, LATEST_CACHE_TTL)
        except Exception:  # noqa: S110 - best effort, see above
            pass
    return {pk: result.get(pk, {}) for pk in device_ids}


def state_timeline(device: Device, start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """State changes in ``[start, end)``, preceded by the state in force at ``start`` (if known)."""
    before = MachineState.objects.filter(device=device, ts__lt=start).order_by("-ts").values_list("ts", "state")[:1]
    inside = MachineState.objects.filter(device=device, ts__gte=start, ts__lt=end).order_by("ts").values_list("ts", "state")
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
