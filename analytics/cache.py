"""Per machine and plant-local day OEE inputs, stored once the day is closed (``OEEDayCache``).

Day and week queries read whole closed days from here (one indexed range read) and compute only
the partial days at the range's edges (and today) from telemetry. A missing or stale row is
computed from telemetry on read, for all machines of that day at once, and upserted. Only days
that ended more than ``SETTLE`` ago are stored, so live data never lands in a stored day; later
telemetry marks the day stale (``analytics.signals.mark_late_days_stale``).
"""

from dataclasses import fields
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection
from django.utils import timezone

from analytics.calendar import local
from analytics.models import OEEDayCache
from analytics.oee import Inputs
from analytics.timeline import machine_inputs

SETTLE = timedelta(minutes=10)


def inputs_to_json(i: Inputs) -> dict:
    return {f.name: str(v) if isinstance(v := getattr(i, f.name), Decimal) else v for f in fields(i)}


def inputs_from_json(data: dict) -> Inputs:
    values = dict(data)
    for name in ("ideal_seconds", "reject_ideal_seconds"):
        values[name] = Decimal(values[name])
    return Inputs(**values)


def closed_days(start: datetime, end: datetime, tz) -> tuple[list[date], datetime, datetime]:
    """Whole local days inside ``[start, min(end, now - SETTLE))``: ``(days, first_midnight, last_midnight)``."""
    limit = min(end, timezone.now() - SETTLE)
    first = start.astimezone(tz).date()
    if local(first, time(), tz) < start:
        first += timedelta(days=1)
    days = []
    day = first
    while local(day + timedelta(days=1), time(), tz) <= limit:
        days.append(day)
        day += timedelta(days=1)
    return days, local(first, time(), tz), local(day, time(), tz)


def day_inputs(plant, devices, days: list[date], minor: int) -> dict[tuple[int, date], Inputs]:
    """``{(device_id, day): Inputs}`` for every machine and closed day: stored rows, the rest computed and stored."""
    from analytics.selectors import machine_data, period_specs  # selectors import this module

    if not days or not devices:
        return {}
    ids = [d.pk for d in devices]
    rows = OEEDayCache.objects.filter(
        device_id__in=ids, day__gte=days[0], day__lte=days[-1], stale=False, minor_stop_seconds=minor
    ).values_list("device_id", "day", "inputs")
    found = {(pk, day): inputs_from_json(data) for pk, day, data in rows}
    tz = plant.tz
    now = timezone.now()
    fresh = []
    for day in days:
        missing = [d for d in devices if (d.pk, day) not in found]
        if not missing:
            continue
        a, b = local(day, time(), tz), local(day + timedelta(days=1), time(), tz)
        specs = period_specs(plant, a, b, "day")
        data = machine_data(missing, a, b)
        for device in missing:
            (inputs,) = machine_inputs(specs, data[device.pk], minor_stop_seconds=minor)
            found[(device.pk, day)] = inputs
            fresh.append(
                OEEDayCache(
                    device=device,
                    day=day,
                    minor_stop_seconds=minor,
                    stale=False,
                    inputs=inputs_to_json(inputs),
                    computed_at=now,
                )
            )
    if fresh:
        # MySQL's ON DUPLICATE KEY UPDATE names no conflict target (Django refuses unique_fields there).
        target = {} if connection.vendor == "mysql" else {"unique_fields": ["device", "day"]}
        OEEDayCache.objects.bulk_create(
            fresh,
            batch_size=1000,
            update_conflicts=True,
            update_fields=["minor_stop_seconds", "stale", "inputs", "computed_at"],
            **target,
        )
    return found


def day_cache_invalidate(*, plant=None, device_ids=None, since: date | None = None) -> int:
    """Mark stored days stale (a plant's, or some machines'), from ``since`` on. Returns the row count."""
    rows = OEEDayCache.objects.filter(stale=False)
    if plant is not None:
        rows = rows.filter(device__plant=plant)
    if device_ids is not None:
        rows = rows.filter(device_id__in=device_ids)
    if since is not None:
        rows = rows.filter(day__gte=since)
    return rows.update(stale=True)
