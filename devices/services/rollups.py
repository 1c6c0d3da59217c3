"""Rollups (1 minute, 1 hour) recomputed from raw readings, and retention.

``rollups_refresh`` claims pending (device, minute) marks, recomputes the affected 1-minute
buckets from raw readings and the affected 1-hour buckets from 1-minute rows, then deletes each
mark only if its ``generation`` did not change meanwhile (a conditional DELETE: readings
committed during the run keep their mark for the next run). Recomputing from the source makes
the task idempotent and exact, late readings included.

Retention deletes whole minutes of raw readings (``retention_enforce``), and ``rollups_refresh``
never recomputes a minute that retention may have emptied: the rollup rows built while its raw
readings existed stay authoritative. A late mark for such a minute (a rollup backlog) is dropped.
"""

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from devices.models import LatestValue, RollupPending, TelemetryReading, TelemetryRollup1h, TelemetryRollup1m

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def rollup_aggregate(rows) -> dict:
    """Merge rows ``(metric_id, bucket, ts_of_last, min, max, sum, count, last)`` into one aggregate per bucket,
    ``{(metric_id, bucket): [min, max, sum, count, last, ts_of_last]}`` (also the demo history's hours)."""
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
            model(
                device_id=device_id,
                metric_id=m,
                bucket=b,
                min=a[0],
                max=a[1],
                sum=a[2],
                count=a[3],
                last=a[4],
                last_ts=a[5],
            )
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

    Replaces the rollup rows of those buckets for every metric the device reports (a bucket left
    without readings disappears). Work is grouped per hour so that each raw scan is bounded to
    one hour of one device. Idempotent: the result depends only on the stored readings.
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
                 {k: a for k, a in rollup_aggregate(minute_rows).items() if k[1] in wanted})  # fmt: skip
        one_minute = TelemetryRollup1m.objects.filter(
            device_id=device_id, metric_id__in=metric_ids, bucket__gte=hour, bucket__lt=hour + HOUR
        ).values_list("metric_id", "bucket", "last_ts", "min", "max", "sum", "count", "last")
        hour_rows = ((m, hour, ts, mn, mx, total, count, last) for m, _, ts, mn, mx, total, count, last in one_minute)
        _replace(TelemetryRollup1h, device_id, metric_ids, {hour}, rollup_aggregate(hour_rows))


def rollups_refresh(*, limit: int = 5000, now: datetime | None = None) -> int:
    """Process up to ``limit`` pending marks, oldest first; return how many marks were completed.

    Per device, in one transaction: recompute the marked minutes (``rollup_device_minutes``), then
    delete each mark only if its ``generation`` is unchanged, so a mark bumped by ingest during the
    run survives for the next run. Minutes older than the raw retention at ``now`` are not
    recomputed (their raw readings may be gone); their marks are dropped. Idempotent and safe to
    run concurrently: a second run recomputes the same rows from the same readings.
    """
    oldest = raw_retention_cutoff((now or timezone.now()).astimezone(UTC))
    marks = list(RollupPending.objects.order_by("bucket").values_list("device_id", "bucket", "generation")[:limit])
    by_device = defaultdict(list)
    for device_id, bucket, generation in marks:
        by_device[device_id].append((bucket, generation))
    done = 0
    for device_id, entries in by_device.items():
        with transaction.atomic():
            rollup_device_minutes(device_id, [bucket for bucket, _ in entries if bucket >= oldest])
            for bucket, generation in entries:
                done += RollupPending.objects.filter(
                    device_id=device_id, bucket=bucket, generation=generation
                ).delete()[0]
    return done


def raw_retention_cutoff(now: datetime) -> datetime:
    """Raw readings before this instant are past retention; a whole minute, so no minute is half-deleted."""
    return _floor_minute(now - timedelta(days=settings.TELEMETRY_RETENTION_RAW_DAYS))


def _delete_before(model, field: str, cutoff: datetime, batch: int) -> int:
    """Delete rows older than ``cutoff`` per (device, metric) key range in small batches.

    Each DELETE walks one (device, metric) range of the clustered key with a LIMIT, so it holds
    few locks for a short time and ingest never waits long. The pairs come from the latest-value
    table, which has a row for every (device, metric) ever ingested.
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
                    count = model.objects.filter(
                        device_id=device_id, metric_id=metric_id, **{f"{field}__lt": cutoff}
                    ).delete()[0]
            deleted += count
            if count < batch:
                break
    return deleted


def retention_enforce(*, now: datetime | None = None, batch: int = 5000) -> dict[str, int]:
    """Delete telemetry past its retention at ``now``; return the deleted row counts per resolution.

    Raw readings older than ``TELEMETRY_RETENTION_RAW_DAYS``, 1-minute rollups older than
    ``TELEMETRY_RETENTION_1M_DAYS`` and, when ``TELEMETRY_RETENTION_1H_DAYS`` is not 0 (forever),
    1-hour rollups older than that. Each cutoff is floored to its table's resolution, so only
    rows (and buckets) lying entirely before it go. Deletes in batches of ``batch`` per
    (device, metric); idempotent (a second run deletes nothing).
    """
    now = (now or timezone.now()).astimezone(UTC)
    result = {
        "raw": _delete_before(TelemetryReading, "ts", raw_retention_cutoff(now), batch),
        "1m": _delete_before(
            TelemetryRollup1m,
            "bucket",
            _floor_minute(now - timedelta(days=settings.TELEMETRY_RETENTION_1M_DAYS)),
            batch,
        ),
    }
    if settings.TELEMETRY_RETENTION_1H_DAYS:
        cutoff = _floor_hour(now - timedelta(days=settings.TELEMETRY_RETENTION_1H_DAYS))
        result["1h"] = _delete_before(TelemetryRollup1h, "bucket", cutoff, batch)
    return result
