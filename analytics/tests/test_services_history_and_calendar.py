"""Every path that edits a machine's ideal cycle time keeps its history, and every calendar edit
(API or admin) makes the stored OEE days of the plant recompute."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from analytics.models import IdealCycleTime, NonProductionDay, OEEDayCache, Shift
from analytics.selectors import Target, oee_compute
from analytics.tests.factories import at, counts, make_shift, recent_day, store
from conftest import assert_status
from devices.tests.factories import make_device, make_line

pytestmark = pytest.mark.django_db
TZ = "Europe/Berlin"  # plant A's


def admin_browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def history(device) -> list[Decimal]:
    return list(IdealCycleTime.objects.filter(device=device).order_by("valid_from").values_list("seconds", flat=True))


def test_records_the_history_when_a_plant_admin_changes_the_ideal_cycle_time_in_the_admin(plant_a, plant_admin):
    device = make_device(make_line(plant_a), ideal_cycle_time=Decimal("2.5"))
    form = {
        "uid": device.uid, "name": device.name, "kind": device.kind, "plant": plant_a.pk, "line": device.line_id,
        "model": device.model, "firmware_version": device.firmware_version, "ideal_cycle_time": "4",
        "enabled": "on", "tokens-TOTAL_FORMS": "0", "tokens-INITIAL_FORMS": "0",
    }  # fmt: skip

    response = admin_browser(plant_admin).post(f"/admin/devices/device/{device.pk}/change/", form)

    assert_status(response, 302)
    device.refresh_from_db()
    assert device.ideal_cycle_time == Decimal("4")
    assert history(device) == [Decimal("2.5"), Decimal("4")]


def test_records_no_history_when_an_api_edit_leaves_the_ideal_cycle_time_alone(plant_a, plant_admin, client_for):
    device = make_device(make_line(plant_a), ideal_cycle_time=Decimal("2.5"))

    response = client_for(plant_admin).patch(f"/api/v1/devices/{device.pk}/", {"name": "Renamed"}, format="json")

    assert assert_status(response, 200).json()["name"] == "Renamed"
    assert history(device) == []


@pytest.fixture
def stored_days(plant_a):
    """A machine of plant A with a week of production under one shift, its closed days stored."""
    make_shift(plant_a, "Day", "06:00", "14:00")
    device = make_device(make_line(plant_a), ideal_cycle_time=Decimal("3"))
    first = recent_day(TZ, 8)
    events = []
    for n in range(7):
        day = first + timedelta(days=n)
        events += [(at(day, "06:00", TZ), "running", counts(0, 0)), (at(day, "14:00", TZ), "idle", counts(9000, 8900))]
    store(device, events)
    target = Target(plant_a, [device], "plant", plant_a.pk)
    start, end = at(first, "00:00", TZ), at(first, "00:00", TZ, days=7)
    before = oee_compute(target, start, end, "day")["total"]
    assert OEEDayCache.objects.filter(device=device, stale=False).exists()
    return target, start, end, before


def fresh(target, start, end) -> dict:
    """The figures computed live, hour by hour (no stored days)."""
    return oee_compute(target, start, end, "hour")["total"]


def test_recomputes_stored_days_when_a_shift_is_deleted_through_the_api(stored_days, plant_admin, client_for):
    target, start, end, before = stored_days
    shift = Shift.objects.get(plant=target.plant)

    assert_status(client_for(plant_admin).delete(f"/api/v1/shifts/{shift.pk}/"), 204)

    after = oee_compute(target, start, end, "day")["total"]
    assert after["planned_seconds"] != before["planned_seconds"]
    assert after["planned_seconds"] == fresh(target, start, end)["planned_seconds"]


def test_recomputes_stored_days_when_a_non_production_day_is_added_and_deleted_in_the_admin(stored_days, plant_admin):
    target, start, end, before = stored_days
    holiday = (start + timedelta(days=3)).astimezone(target.plant.tz).date()
    browser = admin_browser(plant_admin)

    form = {"plant": target.plant.pk, "date": holiday.isoformat(), "reason": "Holiday"}
    assert_status(browser.post("/admin/analytics/nonproductionday/add/", form), 302)

    during = oee_compute(target, start, end, "day")["total"]
    assert during["planned_seconds"] == before["planned_seconds"] - 8 * 3600
    assert during["planned_seconds"] == fresh(target, start, end)["planned_seconds"]

    day = NonProductionDay.objects.get(plant=target.plant, date=holiday)
    delete = {"action": "delete_selected", "_selected_action": [day.pk], "post": "yes"}
    assert_status(browser.post("/admin/analytics/nonproductionday/", delete), 302)

    assert oee_compute(target, start, end, "day")["total"]["planned_seconds"] == before["planned_seconds"]
