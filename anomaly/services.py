"""Scoring a stream's readings with its persisted detector.

Not wired into ingest yet: a worker (or the benchmark, or a test) hands a batch of one stream's
readings to `stream_score`, which loads the stream's detector, scores the batch in time order and
saves the state back in the same transaction.
"""

from zoneinfo import ZoneInfo

from django.db import transaction

from anomaly.detectors import StreamDetector
from anomaly.models import DetectorState
from devices.models import Device


def stream_score(*, device_id: int, metric_id: int, readings) -> list[tuple]:
    """Score one stream's readings in time order; returns ``[(ts, value, score), ...]``.

    ``readings`` are ``(ts, value)`` pairs with aware datetimes, any order. The stream's state row
    is locked for the batch (``SELECT … FOR UPDATE``), so two workers handed the same stream score
    it one after the other and neither loses the other's readings. A reading not newer than the
    last one scored is skipped (not scored twice), which makes a retried batch idempotent: it
    returns only what it scored now and leaves the state as the first run left it.
    Creates the state row on the stream's first batch; Device.DoesNotExist for an unknown device.
    """
    ordered = sorted(readings, key=lambda reading: reading[0])
    zone = ZoneInfo(Device.objects.values_list("plant__time_zone", flat=True).get(pk=device_id))
    with transaction.atomic():
        row = _state_for_update(device_id, metric_id)
        detector = StreamDetector.from_bytes(bytes(row.state)) if row.readings_seen else StreamDetector()
        scored = []
        for ts, value in ordered:
            if row.last_reading_at is not None and ts <= row.last_reading_at:
                continue
            scored.append((ts, value, detector.score(_plant_clock(ts, zone), value)))
            row.last_reading_at = ts
        if scored:
            row.state = detector.to_bytes()
            row.readings_seen += len(scored)
            row.save(update_fields=["state", "readings_seen", "last_reading_at", "updated_at"])
    return scored


def stream_reset(*, device_id: int, metric_id: int) -> None:
    """Forget what a stream's detector learned (a machine repaired): it starts a new probation.

    Idempotent; a stream never scored is left as it is.
    """
    DetectorState.objects.filter(device_id=device_id, metric_id=metric_id).delete()


def _plant_clock(ts, zone) -> float:
    """The reading's time as seconds on the plant's wall clock: shifts and daily patterns follow
    local time (a day shift starts at 06:00 local, summer or winter), not UTC."""
    return ts.timestamp() + ts.astimezone(zone).utcoffset().total_seconds()


def _state_for_update(device_id: int, metric_id: int) -> DetectorState:
    # get_or_create under the unique constraint, then lock: a concurrent first batch of the same
    # stream either creates the row or waits on it, never creates a second one.
    DetectorState.objects.get_or_create(device_id=device_id, metric_id=metric_id, defaults={"state": b""})
    return DetectorState.objects.select_for_update().get(device_id=device_id, metric_id=metric_id)
