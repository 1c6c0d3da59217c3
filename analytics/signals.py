"""Cross-app hooks (STYLE.md §15): the history of a machine's ideal cycle time, and late telemetry.

``Device.ideal_cycle_time`` is edited in the devices app (API, admin); OEE must weigh pieces made
before a change with the old value. Before a device row is saved with a changed value, the change
is recorded as ``IdealCycleTime`` rows (the old value from the start, the new one from now).
"""

from datetime import UTC, date, datetime, timedelta

from django.utils import timezone

from analytics.models import IdealCycleTime

SINCE_EVER = datetime(2000, 1, 1, tzinfo=UTC)
COUNTERS = {"count_total", "count_good"}


def record_ideal_cycle_time_change(sender, instance, raw=False, update_fields=None, **kwargs):
    """pre_save of ``devices.Device``: record a changed ideal cycle time (one query when unchanged)."""
    if raw or instance.pk is None or (update_fields is not None and "ideal_cycle_time" not in update_fields):
        return
    old = type(instance).objects.filter(pk=instance.pk).values_list("ideal_cycle_time", flat=True).first()
    new = instance.ideal_cycle_time
    if old == new or new is None:
        return
    if old is not None and not IdealCycleTime.objects.filter(device_id=instance.pk).exists():
        IdealCycleTime.objects.create(device_id=instance.pk, valid_from=SINCE_EVER, seconds=old)
    from analytics.cache import day_cache_invalidate

    day_cache_invalidate(device_ids=[instance.pk])
    IdealCycleTime.objects.update_or_create(device_id=instance.pk, valid_from=timezone.now(), defaults={"seconds": new})


def mark_late_days_stale(sender, items, received_at, **kwargs):
    """``devices.signals.telemetry_ingested``: late state or counter messages make stored days stale.

    Stored days end at least ``SETTLE`` before they were computed, so only a message older than
    ``received_at - SETTLE`` can fall into one: live traffic costs no query. From the day before
    the message's UTC date on (a counter reading also changes the next reading's increment, and a
    state holds until the next one), the machine's stored days are recomputed on the next read.
    """
    from analytics.cache import SETTLE, day_cache_invalidate

    settled = received_at - SETTLE
    devices_since: dict[date, set[int]] = {}  # one UPDATE per first stale day, not one per machine
    for item in items:
        late = [
            m.ts
            for m in item.messages
            if m.ts < settled and (m.state is not None or "count_total" in m.values or "count_good" in m.values)
        ]
        if late:
            devices_since.setdefault(min(late).date() - timedelta(days=1), set()).add(item.device.pk)
    for since, device_ids in devices_since.items():
        day_cache_invalidate(device_ids=sorted(device_ids), since=since)
