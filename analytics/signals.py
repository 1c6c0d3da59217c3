"""Cross-app hooks (STYLE.md §15): late telemetry makes stored OEE days stale.

A machine's ideal cycle time history is not a hook: ``devices.services.registry.device_update``
records it through ``analytics.services.ideal_cycle_time_record``.
"""

from datetime import date, timedelta


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
