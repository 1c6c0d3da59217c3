"""OEE writes: the shift calendar, ideal cycle times, reason codes and stop classifications.

Every service is keyword-only, validates (``full_clean`` plus the rules that span rows) and
raises ``django.core.exceptions.ValidationError`` keyed by field, which the API answers as 400.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from analytics.cache import day_cache_invalidate
from analytics.calendar import minutes, offset_minutes, shift_length_minutes
from analytics.models import IdealCycleTime, ReasonCode, Shift, ShiftBreak, StopReason
from devices.models import Device, MachineState, Plant

WEEK = 7 * 1440
# The start of a machine's history: its ideal cycle time before the first recorded change.
SINCE_EVER = datetime(2000, 1, 1, tzinfo=UTC)


def _week_spans(start: time, end: time, weekdays) -> list[tuple[int, int]]:
    """The shift's occurrences as minute spans of a week (Monday 00:00 = 0), wrapped at the week's end."""
    length = shift_length_minutes(start, end)
    spans = []
    for day in weekdays:
        a = day * 1440 + minutes(start)
        b = a + length
        spans.append((a, min(b, WEEK)))
        if b > WEEK:
            spans.append((0, b - WEEK))
    return spans


def shift_validate(*, plant: Plant, start: time, end: time, weekdays, breaks, exclude_pk=None) -> None:
    """Raise ``ValidationError`` (by field) for bad weekdays, breaks outside the shift or overlapping,
    or an overlap with another shift of the plant on a common weekday (wrapping at the week's end)."""
    errors: dict[str, list[str]] = {}
    if not isinstance(weekdays, list) or any(type(d) is not int or not 0 <= d <= 6 for d in weekdays):
        errors["weekdays"] = ["A list of days 0-6 (Monday is 0)."]
    elif len(set(weekdays)) != len(weekdays):
        errors["weekdays"] = ["Each day at most once."]
    length = shift_length_minutes(start, end)
    spans = []
    for n, (b_start, b_end) in enumerate(breaks):
        a, b = offset_minutes(start, b_start), offset_minutes(start, b_end)
        if b_end == end:
            b = length
        if not (a < b <= length):
            errors.setdefault("breaks", []).append(
                f"Break {n + 1} ({b_start:%H:%M}-{b_end:%H:%M}) is not inside the shift {start:%H:%M}-{end:%H:%M}."
            )
        elif any(a < y and x < b for x, y in spans):
            errors.setdefault("breaks", []).append(f"Break {n + 1} overlaps another break.")
        spans.append((a, b))
    if "weekdays" not in errors:
        mine = _week_spans(start, end, weekdays)
        others = Shift.objects.filter(plant=plant).exclude(pk=exclude_pk)
        for other in others:
            theirs = _week_spans(other.start, other.end, other.weekdays)
            if any(a < y and x < b for a, b in mine for x, y in theirs):
                errors.setdefault("start", []).append(
                    f"Overlaps shift '{other.name}' ({other.start:%H:%M}-{other.end:%H:%M}) on a common day."
                )
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def shift_save(
    *,
    plant: Plant,
    name: str,
    start: time,
    end: time,
    weekdays: list[int],
    breaks: list[dict],
    shift: Shift | None = None,
) -> Shift:
    """Create (``shift=None``) or replace a shift and its breaks.

    Raises ``ValidationError`` when breaks fall outside the shift or overlap, or the shift
    overlaps another shift of the plant on a common weekday. Atomic: breaks are replaced whole.
    """
    pairs = [(b["start"], b["end"]) for b in breaks]
    shift_validate(
        plant=plant, start=start, end=end, weekdays=weekdays, breaks=pairs, exclude_pk=shift.pk if shift else None
    )
    shift = shift or Shift(plant=plant)
    shift.name, shift.start, shift.end, shift.weekdays = name, start, end, sorted(weekdays)
    shift.full_clean()
    shift.save()
    shift.breaks.all().delete()
    day_cache_invalidate(plant=plant)
    for b_start, b_end in pairs:
        brk = ShiftBreak(shift=shift, start=b_start, end=b_end)
        brk.full_clean()
        brk.save()
    return shift


def ideal_cycle_time_record(
    *, device: Device, previous: Decimal | None, valid_from: datetime | None = None
) -> IdealCycleTime:
    """Record that ``device.ideal_cycle_time`` (saved by the caller) replaced ``previous`` from ``valid_from`` (now) on.

    OEE weighs pieces made before the change with the old value: the first change also records
    ``previous`` as valid since ``SINCE_EVER``. Marks the machine's stored days stale from the day
    before the change (all of them when there was no previous value, which the earlier days used).
    Idempotent for the same ``valid_from``. Call it inside the caller's transaction.
    """
    valid_from = valid_from or timezone.now()
    if previous is not None and not IdealCycleTime.objects.filter(device=device).exists():
        IdealCycleTime.objects.create(device=device, valid_from=SINCE_EVER, seconds=previous)
    row = IdealCycleTime.objects.filter(device=device, valid_from=valid_from).first()
    row = row or IdealCycleTime(device=device, valid_from=valid_from)
    row.seconds = device.ideal_cycle_time
    row.full_clean()
    row.save()
    since = None if previous is None else valid_from.date() - timedelta(days=1)
    day_cache_invalidate(device_ids=[device.pk], since=since)
    return row


def ideal_cycle_time_set(*, device: Device, seconds: Decimal, valid_from: datetime | None = None) -> IdealCycleTime:
    """Set a machine's ideal cycle time from ``valid_from`` (now) on; pieces made earlier keep the old one.

    Updates the device row and its history (``ideal_cycle_time_record``). Raises
    ``ValidationError`` for a value that is not a positive number of seconds.
    """
    if seconds is None or seconds <= 0:
        raise ValidationError({"ideal_cycle_time": ["The ideal cycle time must be a positive number of seconds."]})
    with transaction.atomic():
        previous = device.ideal_cycle_time
        Device.objects.filter(pk=device.pk).update(ideal_cycle_time=seconds)
        device.ideal_cycle_time = seconds
        return ideal_cycle_time_record(device=device, previous=previous, valid_from=valid_from)


def calendar_changed(*, plants: Iterable[Plant]) -> None:
    """The shift calendar of ``plants`` changed (a shift, its breaks, a non-production day) outside
    ``shift_save``, e.g. in the admin: their stored OEE days are recomputed on the next read."""
    for plant in {plant.pk: plant for plant in plants}.values():
        day_cache_invalidate(plant=plant)


@transaction.atomic
def calendar_entries_delete(*, entries: QuerySet) -> None:
    """Delete shifts (with their breaks) or non-production days, a queryset of either, and mark their
    plants' stored OEE days stale."""
    plants = [entry.plant for entry in entries.select_related("plant")]
    entries.delete()
    calendar_changed(plants=plants)


def reason_code_create(*, plant: Plant, code: str, name: str, category: str) -> ReasonCode:
    """A plant's stop reason mapped to a loss category. Raises ``ValidationError`` (duplicate code, bad category)."""
    reason = ReasonCode(plant=plant, code=code, name=name, category=category)
    reason.full_clean()
    reason.save()
    return reason


def stop_classify(*, device: Device, start: datetime, reason: ReasonCode, by, note: str = "") -> StopReason:
    """Give the stop that began at ``start`` on ``device`` a reason (upsert: re-classifying replaces it).

    ``start`` must be the ``ts`` of a stored stop state (down/idle/setup/offline) of the device and
    ``reason`` a code of the device's plant; otherwise ``ValidationError``. Idempotent.
    """
    if reason.plant_id != device.plant_id:
        raise ValidationError({"reason": ["Not a reason code of this machine's plant."]})
    state = MachineState.objects.filter(device_id=device.pk, ts=start).values_list("state", flat=True).first()
    if state not in ("down", "idle", "setup", "offline"):
        raise ValidationError({"start": ["No stop of this machine begins at this time."]})
    row, _ = StopReason.objects.update_or_create(
        device=device, start=start, defaults={"reason": reason, "note": note, "classified_by": by}
    )
    day_cache_invalidate(device_ids=[device.pk], since=start.date() - timedelta(days=1))
    return row
