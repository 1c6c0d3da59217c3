"""Admin pages of alerts: scoped to the plants the user administers; alarm history and actions."""

import pytest
from django.test import Client

from alerts.models import Alarm, NotificationChannel
from alerts.services.alarms import alarm_raise
from alerts.tests.factories import at, make_channel, make_rule
from conftest import assert_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def alarms(plant_a, plant_b, press, foreign_press):
    mine = alarm_raise(rule=make_rule(plant_a, name="alpha-rule"), device=press, value=91, at=at(0))
    theirs = alarm_raise(rule=make_rule(plant_b, name="bravo-rule"), device=foreign_press, value=91, at=at(0))
    return mine, theirs


def test_lists_only_own_plant_alarms_and_shows_the_history(plant_admin_client, alarms):
    mine, theirs = alarms
    page = assert_status(plant_admin_client.get("/admin/alerts/alarm/"), 200).content.decode()
    assert "alpha-rule" in page and "bravo-rule" not in page
    detail = assert_status(plant_admin_client.get(f"/admin/alerts/alarm/{mine.pk}/change/"), 200).content.decode()
    assert "raised" in detail
    assert plant_admin_client.get(f"/admin/alerts/alarm/{theirs.pk}/change/").status_code in (302, 403, 404)


def test_acknowledges_and_shelves_from_the_admin_action(plant_admin_client, alarms, plant_admin):
    mine, theirs = alarms
    for action in ("acknowledge", "shelve_one_hour"):
        plant_admin_client.post("/admin/alerts/alarm/", {"action": action, "_selected_action": [mine.pk, theirs.pk]})
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert (mine.state, mine.acknowledged_by, mine.shelved_by) == (Alarm.State.ACTIVE_ACK, plant_admin, plant_admin)
    assert theirs.state == Alarm.State.ACTIVE_UNACK


def test_rejects_invalid_channel_settings_in_the_admin(plant_admin_client, plant_a):
    form = {"plant": plant_a.pk, "name": "Hook", "kind": "webhook", "config": '{"url": "nope"}', "enabled": "on"}
    page = assert_status(plant_admin_client.post("/admin/alerts/notificationchannel/add/", form), 200).content.decode()
    assert "Invalid settings" in page
    assert not NotificationChannel.objects.exists()
    make_channel(plant_a, "email", name="Mail")
    assert "Mail" in plant_admin_client.get("/admin/alerts/notificationchannel/").content.decode()


def test_kpi_page_lists_only_visible_plants_and_loads_its_script(client_for, viewer, plant_a, plant_b):
    client = Client()
    client.force_login(viewer)
    page = assert_status(client.get("/alarms/kpis/"), 200).content.decode()
    assert "Plant A" in page and "Plant B" not in page
    assert "alerts/kpis.js" in page and "uPlot.iife.min.js" in page
    assert Client().get("/alarms/kpis/").status_code == 302  # login required


def test_rule_list_and_pages_show_each_rule_in_words_with_its_values(plant_admin_client, plant_a, press):
    """The list showed the condition's label with field names ("no data for no_data_seconds") and
    one threshold column; each rule now reads as a sentence with its own values and unit."""
    from devices.models import Metric

    Metric.objects.update_or_create(name="vibration", defaults={"unit": "mm/s", "display_name": "Spindle vibration"})
    vibration = make_rule(plant_a, name="Vibration high", metric="vibration", condition="gt", threshold=0.06,
                          clear_threshold=0.045, on_delay=20, off_delay=30)  # fmt: skip
    make_rule(plant_a, name="No data", metric="", condition="no_data", threshold=None, no_data_seconds=300)
    make_rule(plant_a, name="Machine down", metric="", condition="state", threshold=None, state="down", on_delay=120)
    make_rule(plant_a, name="Band", metric="pressure", condition="outside", threshold=2, threshold_high=6.5)
    page = assert_status(plant_admin_client.get("/admin/alerts/alertrule/"), 200).content.decode()
    assert "Spindle vibration &gt; 0.06 mm/s for 20 s (clears below 0.045 mm/s after 30 s)" in page
    assert "no data for 5 min" in page
    assert "machine down for 2 min" in page
    assert "Pressure outside 2 bar – 6.5 bar" in page  # a metric no device sent yet: its name's defaults
    for placeholder in ("no_data_seconds", "threshold_high", "equals state", "value &gt; threshold"):
        assert placeholder not in page, placeholder
    detail = plant_admin_client.get(f"/admin/alerts/alertrule/{vibration.pk}/change/").content.decode()
    assert "Spindle vibration &gt; 0.06 mm/s for 20 s" in detail
    add = assert_status(plant_admin_client.get("/admin/alerts/alertrule/add/"), 200).content.decode()
    assert "Value above the threshold" in add  # the condition choices, in words
    alarm = alarm_raise(rule=vibration, device=press, value=0.07, at=at(0))
    detail = plant_admin_client.get(f"/admin/alerts/alarm/{alarm.pk}/change/").content.decode()
    assert "Spindle vibration &gt; 0.06 mm/s for 20 s (clears below 0.045 mm/s after 30 s)" in detail
