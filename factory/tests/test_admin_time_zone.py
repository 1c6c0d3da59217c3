"""The admin shows times in a plant's zone and says which (factory/admin.py), and values with their
metric's unit and precision (issue 13 items 5 and 7)."""

import re
from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.test import Client

from alerts.services.alarms import alarm_raise
from alerts.tests.factories import make_rule
from conftest import assert_status
from devices.models import Metric
from devices.selectors import latest_cache_key
from devices.tests.factories import make_device, make_line, make_plant, make_user
from devices.tests.test_ingest_store import msg, store

pytestmark = pytest.mark.django_db

RAISED = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)  # 21:00 in Berlin, 14:00 in Chicago


@pytest.fixture
def berlin():
    plant = make_plant("Berlin works", time_zone="Europe/Berlin")
    press = make_device(make_line(plant, "Press line"), "press-01")
    rule = make_rule(plant, name="Vibration high", metric="vibration", threshold=0.06)
    store(press, msg(0, vibration=0.0634))
    alarm = alarm_raise(rule=rule, device=press, value=0.0634, at=RAISED)
    return plant, alarm


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_shows_a_berlin_plant_admin_berlin_times_and_says_so(berlin):
    plant, alarm = berlin
    client = logged_in(make_user("berlin-admin", plant=plant, role="admin"))

    page = assert_status(client.get(f"/admin/alerts/alarm/{alarm.pk}/change/"), 200).content.decode()

    assert "Dec. 6, 2026, 9 p.m." in page  # the raise time in Berlin, 20:00 UTC
    assert "8 p.m." not in page
    assert re.search(r'<option value="Europe/Berlin" selected>Europe/Berlin</option>', page)
    listing = assert_status(client.get("/admin/alerts/alarm/"), 200).content.decode()
    assert "Dec. 6, 2026, 9 p.m." in listing and "Times:" in listing


def test_shows_alarm_values_and_latest_values_with_unit_and_precision(berlin):
    plant, alarm = berlin
    client = logged_in(make_user("berlin-admin", plant=plant, role="admin"))
    assert '<td class="field-value_shown">0.063 mm/s</td>' in client.get("/admin/alerts/alarm/").content.decode()
    detail = client.get(f"/admin/alerts/alarm/{alarm.pk}/change/").content.decode()
    assert '<div class="readonly">0.063 mm/s</div>' in detail and "0.0634" not in detail
    press = alarm.device
    cache.delete(latest_cache_key(press.pk))  # ids repeat between tests; the admin may read a cached "none"
    assert "<td>0.063 mm/s</td>" in client.get(f"/admin/devices/device/{press.pk}/change/").content.decode()


def test_shows_the_values_in_an_alarms_history_with_unit_and_precision(berlin, superuser):
    _plant, alarm = berlin
    detail = logged_in(superuser).get(f"/admin/alerts/alarm/{alarm.pk}/change/").content.decode()
    assert re.search(r'<td class="field-value_shown">\s*<p>0\.063 mm/s</p>', detail)  # the "raised" event
    assert "0.0634" not in detail


def test_switches_to_another_of_the_users_plants_zones_and_refuses_a_foreign_one(berlin, superuser):
    plant, alarm = berlin
    make_plant("Austin works", time_zone="America/Chicago")  # first by name: the superuser's default
    client = logged_in(superuser)
    url = f"/admin/alerts/alarm/{alarm.pk}/change/"
    assert "Dec. 6, 2026, 2 p.m." in client.get(url).content.decode()

    switched = client.post("/admin/time-zone/", {"tz": "Europe/Berlin", "next": url})
    assert (switched.status_code, switched["Location"]) == (302, url)
    assert "Dec. 6, 2026, 9 p.m." in client.get(url).content.decode()

    refused = client.post("/admin/time-zone/", {"tz": "Asia/Tokyo", "next": url})
    assert refused.status_code == 400 and b"one of your plants" in refused.content
    assert "Dec. 6, 2026, 9 p.m." in client.get(url).content.decode()  # the choice stands


def test_edits_how_a_metric_reads_in_the_admin(superuser, berlin):
    client = logged_in(superuser)
    metric = Metric.objects.get(name="vibration")
    form = {"display_name": "Spindle vibration", "unit": "mm/s", "precision": "4"}
    assert_status(client.post(f"/admin/devices/metric/{metric.pk}/change/", form), 302)
    metric.refresh_from_db()
    assert (metric.label, metric.precision) == ("Spindle vibration", 4)
    listing = client.get("/admin/devices/metric/").content.decode()
    assert "1,234.5678 mm/s" in listing  # the "reads as" example
