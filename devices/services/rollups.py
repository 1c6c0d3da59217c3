"""Rollups (1 minute, 1 hour) recomputed from raw readings, and retention.

``rollups_refresh`` claims pending (device, minute) marks, recomputes the affected 1-minute
buckets from raw readings and the affected 1-hour buckets from 1-minute rows, then deletes each
mark only if its ``generation`` did not change meanwhile (a conditional DELETE: readings
committed during the run keep their mark for the next run). Recomputing from the source makes
the task idempotent and exact, late readings included.
"""

from collections import defaultdict
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from devices.models import LatestValue, RollupPending, TelemetryReading, TelemetryRollup1h, TelemetryRollup1m

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def _aggregate(rows) -> dict:
    """Merge rows ``(metric_id, bucket, ts_of_last, min, max, sum, count, last)`` into one aggregate per bucket."""
    out: dict = {}
    for metric_id, bucket, ts, mn, mx, total, count, last in rows:
        key = (metric_id, bucket)
        agg = out.get(key)
        if agg is None:
            out[key] = [mn, mx, total, count, last, ts]
            continue
        agg[0] = min(agg[0], mn)
        agg[1] = max(agg[1], mx)
        agg[2] += total
        agg[3] += count
        if ts >= agg[5]:
            agg[4], agg[5] = last, ts
    return out


def _replace(model, device_id: int, metric_ids: list[int], buckets: set[datetime], aggregated: dict) -> None:
    """Replace the rows of ``buckets`` with ``aggregated`` (delete + insert: emptied buckets disappear)."""
    model.objects.filter(device_id=device_id, metric_id__in=metric_ids, bucket__in=buckets).delete()
    model.objects.bulk_create(
        [
            model(device_id=device_id, metric_id=m, bucket=b, min=a[0], max=a[1], sum=a[2], count=a[3], last=a[4],
                  last_ts=a[5])  # fmt: skip
            for (m, b), a in aggregated.items()
        ],
        batch_size=1000,
    )


def _floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def _floor_hour(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def rollup_device_minutes(device_id: int, minutes: list[datetime]) -> None:
    """Recompute the 1-minute buckets ``minutes`` of one device from raw rows, and their hours from 1-minute rows.

    Work is grouped per hour so that each raw scan is bounded to one hour of one device.
    """
    metric_ids = list(LatestValue.objects.filter(device_id=device_id).values_list("metric_id", flat=True))
    if not metric_ids:
        return
    by_hour = defaultdict(set)
    for minute in minutes:
        by_hour[_floor_hour(minute)].add(minute)
    for hour, wanted in sorted(by_hour.items()):
        raw = TelemetryReading.objects.filter(
            device_id=device_id, metric_id__in=metric_ids, ts__gte=min(wanted), ts__lt=max(wanted) + MINUTE
        ).values_list("metric_id", "ts", "value")
        minute_rows = ((m, _floor_minute(ts), ts, v, v, v, 1, v) for m, ts, v in raw.iterator(chunk_size=10000))
        _replace(TelemetryRollup1m, device_id, metric_ids, wanted,
                 {k: a for k, a in _aggregate(minute_rows).items() if k[1] in wanted})  # fmt: skip
        one_minute = TelemetryRollup1m.objects.filter(
            device_id=device_id, metric_id__in=metric_ids, bucket__gte=hour, bucket__lt=hour + HOUR
        ).values_list("metric_id", "bucket", "last_ts", "min", "max", "sum", "count", "last")
        hour_rows = ((m, hour, ts, mn, mx, total, count, last) for m, _, ts, mn, mx, total, count, last in one_minute)
        _replace(TelemetryRollup1h, device_id, metric_ids, {hour}, _aggregate(hour_rows))


def rollups_refresh(*, limit: int = 5000) -> int:
    """Process up to ``limit`` pending marks; return how many were completed. Safe to run concurrently."""
    marks = list(RollupPending.objects.order_by("bucket").values_list("device_id", "bucket", "generation")[:limit])
    by_device = defaultdict(list)
    for device_id, bucket, generation in marks:
        by_device[device_id].append((bucket, generation))
    done = 0
    for device_id, entries in by_device.items():
        with transaction.atomic():
            rollup_device_minutes(device_id, [bucket for bucket, _ in entries])
            for bucket, generation in entries:
                done += RollupPending.objects.filter(device_id=device_id, bucket=bucket, generation=generation).delete()[0]
    return done


def _delete_before(model, field: str, cutoff: datetime, batch: int) -> int:
    """Delete rows older than ``cutoff`` per (device, metric) key range in small batches.

    Each DELETE walks one (device, metric) range of the clustered key with a LIMIT, so it holds
    few locks for a short time and ingest never waits long.
    """
    deleted = 0
    pairs = LatestValue.objects.values_list("device_id", "metric_id")
    table = model._meta.db_table
    for device_id, metric_id in pairs.iterator():
        while True:
            with connection.cursor() as cursor:
                if connection.vendor == "mysql":
                    cursor.execute(
                        f"DELETE FROM {table} WHERE device_id = %s AND metric_id = %s AND {field} < %s LIMIT %s",  # noqa: S608
                        [device_id, metric_id, connection.ops.adapt_datetimefield_value(cutoff), batch],
                    )
                    count = cursor.rowcount
                else:
                    count = model.objects.filter(device_id=device_id, metric_id=metric_id, **{f"{field}__lt": cutoff}).delete()[0]
            deleted += count
            if count < batch:
                break
    return deleted


def retention_enforce(*, now: datetime | None = None, batch: int = 5000) -> dict[str, int]:
    """Delete raw readings and 1-minute rollups past their retention (1-hour rollups: per setting, 0 = forever)."""
    now = now or timezone.now()
    result = {
        "raw": _delete_before(TelemetryReading, "ts", now - timedelta(days=settings.TELEMETRY_RETENTION_RAW_DAYS), batch),
        "1m": _delete_before(TelemetryRollup1m, "bucket", now - timedelta(days=settings.TELEMETRY_RETENTION_1M_DAYS), batch),
    }
    if settings.TELEMETRY_RETENTION_1H_DAYS:
        cutoff = now - timedelta(days=settings.TELEMETRY_RETENTION_1H_DAYS)
        result["1h"] = _delete_before(TelemetryRollup1h, "bucket", cutoff, batch)
    return result
