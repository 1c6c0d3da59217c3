"""The shift calendar as UTC intervals: shift occurrences, their breaks, and report periods.

Wall-clock times are resolved in the plant's zone with ``zoneinfo`` (fold=0), so an occurrence
lasts what the clock really shows that night: a 22:00–06:00 shift is 7 hours on the spring DST
night and 9 hours on the autumn one.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

DAY = timedelta(days=1)
Interval = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One occurrence of a shift: ``[start, end)`` in UTC and its breaks, on local ``day``."""

    shift_id: int
    name: str
    day: date
    start: datetime
    end: datetime
    breaks: tuple[Interval, ...] = field(default=())

    def planned(self) -> list[Interval]:
        """The occurrence minus its breaks (sorted, non-overlapping)."""
        return subtract([(self.start, self.end)], self.breaks)


def local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock ``at`` on ``day`` in ``tz``."""
    return datetime.combine(day, at, tzinfo=tz).astimezone(UTC)


def minutes(at: time) -> int:
    return at.hour * 60 + at.minute


def shift_length_minutes(start: time, end: time) -> int:
    """Nominal length; ``end <= start`` crosses midnight, ``end == start`` is 24 hours."""
    length = (minutes(end) - minutes(start)) % 1440
    return length or 1440


def offset_minutes(start: time, at: time) -> int:
    """Minutes from the shift's start to wall-clock ``at`` (after midnight for a night shift)."""
    return (minutes(at) - minutes(start)) % 1440


def occurrence_of(shift, day: date, tz: ZoneInfo, breaks: Iterable) -> Occurrence:
    """The occurrence of ``shift`` starting on local ``day``; breaks resolved on the right calendar day."""
    start = local(day, shift.start, tz)
    end_day = day + DAY if minutes(shift.end) <= minutes(shift.start) else day
    end = local(end_day, shift.end, tz)
    resolved = []
    for brk in breaks:
        b_day = day + DAY if minutes(brk.start) < minutes(shift.start) else day
        e_day = b_day + DAY if minutes(brk.end) < minutes(brk.start) else b_day
        resolved.append((local(b_day, brk.start, tz), local(e_day, brk.end, tz)))
    return Occurrence(shift.pk, shift.name, day, start, end, tuple(sorted(resolved)))


def occurrences(shifts, start: datetime, end: datetime, tz: ZoneInfo, closed_days=frozenset()) -> list[Occurrence]:
    """Occurrences of ``shifts`` (with prefetched ``breaks``) that intersect ``[start, end)``, by start.

    No occurrence starts on a date in ``closed_days`` (non-production days).
    """
    first = start.astimezone(tz).date() - DAY
    last = end.astimezone(tz).date()
    found = []
    for shift in shifts:
        breaks = list(shift.breaks.all())
        day = first
        while day <= last:
            if day.weekday() in shift.weekdays and day not in closed_days:
                occ = occurrence_of(shift, day, tz, breaks)
                if occ.start < end and occ.end > start:
                    found.append(occ)
            day += DAY
    return sorted(found, key=lambda o: o.start)


def subtract(intervals: list[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """``intervals`` minus ``holes``; both half-open."""
    result = list(intervals)
    for h_start, h_end in holes:
        cut = []
        for a, b in result:
            if h_end <= a or h_start >= b:
                cut.append((a, b))
                continue
            if a < h_start:
                cut.append((a, h_start))
            if h_end < b:
                cut.append((h_end, b))
        result = cut
    return sorted(result)


def clip(intervals: Iterable[Interval], start: datetime, end: datetime) -> list[Interval]:
    """``intervals`` restricted to ``[start, end)``, empty pieces dropped."""
    return [(max(a, start), min(b, end)) for a, b in intervals if a < end and b > start]


def calendar_periods(start: datetime, end: datetime, group_by: str, tz: ZoneInfo) -> list[Interval]:
    """Plant-local hours, days or ISO weeks (Monday) covering ``[start, end)``, clipped to it.

    Days and weeks start at local midnight (23 or 25 hours long on DST days); hours are UTC
    hours, which are local hours in every zone with whole-hour offsets.
    """
    if group_by == "hour":
        edge = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        step = None
    else:
        day = start.astimezone(tz).date()
        if group_by == "week":
            day -= timedelta(days=day.weekday())
        edge = local(day, time(), tz)
        step = 7 if group_by == "week" else 1
    periods = []
    while edge < end:
        if step is None:
            nxt = edge + timedelta(hours=1)
        else:
            nxt = local(edge.astimezone(tz).date() + timedelta(days=step), time(), tz)
        periods.append((max(edge, start), min(nxt, end)))
        edge = nxt
    return periods
