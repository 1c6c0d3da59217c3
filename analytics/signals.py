"""Cross-app hook (STYLE.md §15): analytics keeps the history of a machine's ideal cycle time.

``Device.ideal_cycle_time`` is edited in the devices app (API, admin); OEE must weigh pieces made
before a change with the old value. Before a device row is saved with a changed value, the change
is recorded as ``IdealCycleTime`` rows (the old value from the start, the new one from now).
"""

from datetime import UTC, datetime

from django.utils import timezone

from analytics.models import IdealCycleTime

SINCE_EVER = datetime(2000, 1, 1, tzinfo=UTC)


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
    IdealCycleTime.objects.update_or_create(device_id=instance.pk, valid_from=timezone.now(), defaults={"seconds": new})
