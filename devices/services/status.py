"""Device connectivity: online/offline from last-seen against each device's expected interval."""

from datetime import datetime

from django.db import transaction

from devices.models import Device
from devices.signals import device_status_changed


def devices_mark_offline(*, now: datetime) -> list[int]:
    """Flip devices not heard from within 3 expected intervals to offline; return their ids.

    Each flip is claimed with a conditional UPDATE (still online, same last-seen), so concurrent
    runs or a device reporting meanwhile never produce a wrong or duplicate event. Sends
    ``device_status_changed(online=False)`` once per change, after commit. Idempotent.
    """
    candidates = Device.objects.filter(online=True).only("pk", "last_seen_at", "expected_interval")
    changed = []
    with transaction.atomic():
        for device in candidates:
            if device.is_online(now):
                continue
            claimed = Device.objects.filter(pk=device.pk, online=True, last_seen_at=device.last_seen_at).update(
                online=False
            )
            if claimed:
                changed.append(device.pk)
        if changed:
            transaction.on_commit(
                lambda: device_status_changed.send_robust(sender=Device, device_ids=changed, online=False, at=now)
            )
    return changed
