"""Stored closed days: day/week figures equal the live computation, and late data or calendar edits make them stale."""

from datetime import timedelta
from decimal import Decimal

import pytest

from analytics.models import OEEDayCache
from analytics.selectors import Target, oee_compute
from analytics.tests.factories import at, counts, make_shift, recent_day, store
from devices.tests.factories import make_device, make_line, make_plant

pytestmark = pytest.mark.django_db
TZ = "America/New_York"


@pytest.fixture
def week(db):
    plant = make_plant("Cache plant", time_zone=TZ)
    make_shift(plant, "Night", "22:00", "06:00", breaks=[("02:00", "02:30")])
    device = make_device(make_line(plant), ideal_cycle_time=Decimal("3"))
    first = recent_day(TZ, 8)
    events = []
    for n in range(7):
        day = first + timedelta(days=n)
        events += [
            (at(day, "21:00", TZ), "idle", counts(0, 0)),
            (at(day, "22:00", TZ), "running", None),
            (at(day, "01:00", TZ, days=1), "down", counts(3000 + n, 2990)),
            (at(day, "01:40", TZ, days=1), "running", None),
            (at(day, "06:00", TZ, days=1), "idle", counts(7000 + n, 6900)),
        ]
    store(device, events)
    target = Target(plant, [device], "plant", plant.pk)
    return target, device, at(first, "12:00", TZ), at(first, "00:00", TZ, days=7)


def _figures(target, start, end, group_by):
    return oee_compute(target, start, end, group_by)


def test_day_and_week_from_stored_days_equal_the_hourly_computation(week):
    target, device, start, end = week
    hourly = _figures(target, start, end, "hour")["total"]
    cold = _figures(target, start, end, "day")
    assert OEEDayCache.objects.filter(device=device).count() == 6  # whole closed days; the first is partial
    warm = _figures(target, start, end, "day")
    weekly = _figures(target, start, end, "week")
    keys = ("planned_seconds", "run_seconds", "stop_seconds", "total_count", "good_count", "oee", "down_episodes")
    for result in (cold["total"], warm["total"], weekly["total"]):
        assert {k: result[k] for k in keys} == {k: hourly[k] for k in keys}
    assert cold["periods"] == warm["periods"]
    assert hourly["down_episodes"] == 6  # one per night begun in range (the 7th night starts at the end)


def test_late_telemetry_marks_stored_days_stale(week, django_capture_on_commit_callbacks):
    target, device, start, end = week
    before = _figures(target, start, end, "day")["total"]
    night = (start + timedelta(days=2)).astimezone(target.plant.tz).date()
    with django_capture_on_commit_callbacks(execute=True):
        store(device, [(at(night, "03:00", TZ), "down", None), (at(night, "03:30", TZ), "running", None)])
    assert OEEDayCache.objects.filter(device=device, stale=True).exists()
    after = _figures(target, start, end, "day")["total"]
    assert after["run_seconds"] == before["run_seconds"] - 1800
    assert not OEEDayCache.objects.filter(device=device, stale=True).exists()


def test_editing_the_calendar_recomputes_stored_days(week):
    target, device, start, end = week
    before = _figures(target, start, end, "day")["total"]
    from analytics.models import Shift
    from analytics.services import shift_save
    from analytics.tests.factories import hm

    shift = Shift.objects.get(plant=target.plant)
    shift_save(plant=target.plant, shift=shift, name="Night", start=hm("22:00"), end=hm("06:00"),
               weekdays=shift.weekdays, breaks=[])  # fmt: skip
    after = _figures(target, start, end, "day")["total"]
    assert after["planned_seconds"] == before["planned_seconds"] + 6 * 1800  # six whole nights lost their break
