"""A shift report triggered from the admin; reports listed and downloaded (API, admin), scoped by plant."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone

from analytics.calendar import occurrences
from analytics.models import OEEReport, ReportSubscription
from analytics.reports import report_run
from analytics.tests.factories import at, counts, make_shift, store
from conftest import assert_status
from devices.tests.factories import make_device, make_line

pytestmark = pytest.mark.django_db
TZ = "Europe/Berlin"


@pytest.fixture
def shift(plant_a):
    plant_a.time_zone = TZ
    plant_a.save()
    shift = make_shift(plant_a)
    # The day of the shift's last closed occurrence, the one the admin action reports: yesterday
    # before 14:00 Berlin, today after (a fixed "yesterday" made the report empty every evening).
    now = timezone.now()
    day = [o for o in occurrences([shift], now - timedelta(days=2), now, plant_a.tz) if o.end <= now][-1].day
    device = make_device(make_line(plant_a), "lathe-1", ideal_cycle_time=Decimal("2"))
    store(device, [(at(day, "06:00", TZ), "running", counts(0, 0)), (at(day, "14:00", TZ), "idle", counts(7200, 7000))])
    shift.data_day = day
    return shift


def test_plant_admin_runs_the_last_shift_report_from_the_admin(
    plant_a, plant_admin, shift, django_capture_on_commit_callbacks
):
    ReportSubscription.objects.create(user=plant_admin, plant=plant_a, kinds=["shift"])
    client = Client()
    client.force_login(plant_admin)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/analytics/shift/", {"action": "run_last_report", "_selected_action": [shift.pk]}, follow=True
        )
    assert_status(response, 200)
    report = OEEReport.objects.get(kind="shift")
    assert report.data["total"]["oee"] == 48.61  # A 100 %, P 50 % (7,200 × 2 s / 8 h), Q 97.22 %
    assert len(mail.outbox) == 1 and mail.outbox[0].attachments[-1][2] == "text/csv"
    csv_page = assert_status(client.get(f"/admin/analytics/oeereport/{report.pk}/csv/"), 200)
    assert "lathe-1" in csv_page.content.decode()


def test_reports_are_listed_per_plant_and_downloadable_as_csv(plant_a, viewer, outsider, shift, client_for):
    day = shift.data_day
    start, end = at(day, "06:00", TZ), at(day, "14:00", TZ)
    report = report_run(plant=plant_a, kind="shift", start=start, end=end, label="Early", now=end)
    listed = assert_status(client_for(viewer).get("/api/v1/analytics/reports/"), 200).json()["results"]
    assert [r["id"] for r in listed] == [report.pk] and listed[0]["revised"] is False
    assert client_for(outsider).get("/api/v1/analytics/reports/").json()["results"] == []
    assert_status(client_for(outsider).get(f"/api/v1/analytics/reports/{report.pk}/csv/"), 404)
    response = assert_status(client_for(viewer).get(listed[0]["csv_url"]), 200)
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert rows[-1]["device"] == "TOTAL" and rows[-1]["oee"] == "48.61"


def test_demo_seed_creates_shifts_around_the_clock_once(plant_a):
    from analytics.demo import demo_seed

    assert demo_seed(plant=plant_a) == 10
    assert demo_seed(plant=plant_a) == 0
    assert sorted(plant_a.shifts.values_list("name", flat=True)) == ["Early", "Late", "Night"]
