"""/api/v1/alarms/: list and history for viewers; acknowledge, shelve, resolve for operators; suppress for admins."""

import pytest
from django.utils import timezone

from alerts.models import Alarm
from alerts.services.alarms import alarm_raise
from alerts.tests.factories import at, make_rule
from conftest import assert_status
from devices.tests.factories import make_device

pytestmark = pytest.mark.django_db
URL = "/api/v1/alarms/"


@pytest.fixture
def alarm(plant_a, press):
    return alarm_raise(rule=make_rule(plant_a, name="Hot", action="Cool it"), device=press, value=91.0, at=at(0))


@pytest.fixture
def foreign_alarm(plant_b, foreign_press):
    return alarm_raise(rule=make_rule(plant_b), device=foreign_press, value=91.0, at=at(0))


def test_lists_only_plant_a_alarms_with_bounded_queries(
    client_for, viewer, alarm, foreign_alarm, django_assert_max_num_queries
):
    client = client_for(viewer)
    with django_assert_max_num_queries(6):
        body = assert_status(client.get(URL), 200).json()
    assert [row["id"] for row in body["results"]] == [alarm.pk]
    row = body["results"][0]
    assert (row["state"], row["severity"], row["device_uid"], row["rule_name"], row["action"], row["shelved"]) == (
        "active_unack", "warning", "press-01", "Hot", "Cool it", False,
    )  # fmt: skip


def test_filters_by_state_severity_and_line(client_for, viewer, alarm, line_a):
    client = client_for(viewer)
    assert assert_status(client.get(URL, {"state": "active_unack", "line": line_a.pk}), 200).json()["count"] == 1
    assert assert_status(client.get(URL, {"severity": "critical"}), 200).json()["count"] == 0
    assert assert_status(client.get(URL, {"open": "false"}), 200).json()["count"] == 0


def test_acknowledges_once_and_answers_a_clear_no_op_the_second_time(client_for, operator, alarm):
    client = client_for(operator)
    first = assert_status(client.post(f"{URL}{alarm.pk}/acknowledge/", {"comment": "On it"}), 200).json()
    assert (first["state"], first["changed"], first["acknowledged_by"]) == ("active_ack", True, "operator")
    second = assert_status(client.post(f"{URL}{alarm.pk}/acknowledge/", {}), 200).json()
    assert second["changed"] is False
    assert second["detail"].startswith("Already acknowledged by operator at ")
    assert second["acknowledged_at"] == first["acknowledged_at"]
    history = assert_status(client.get(f"{URL}{alarm.pk}/events/"), 200).json()["results"]
    assert [(e["kind"], e["user"], e["comment"]) for e in history] == [
        ("raised", None, ""),
        ("acknowledged", "operator", "On it"),
    ]


def test_answers_404_when_acknowledging_another_plants_alarm(client_for, operator, foreign_alarm):
    assert_status(client_for(operator).post(f"{URL}{foreign_alarm.pk}/acknowledge/", {}), 404)
    foreign_alarm.refresh_from_db()
    assert foreign_alarm.state == Alarm.State.ACTIVE_UNACK


def test_answers_403_when_viewer_acknowledges_and_404_for_outsider(client_for, viewer, outsider, alarm):
    body = assert_status(client_for(viewer).post(f"{URL}{alarm.pk}/acknowledge/", {}), 403).json()
    assert "operator role" in body["detail"]
    assert_status(client_for(outsider).get(f"{URL}{alarm.pk}/"), 404)
    alarm.refresh_from_db()
    assert alarm.state == Alarm.State.ACTIVE_UNACK


def test_closes_a_cleared_alarm_when_acknowledged(client_for, operator, alarm, press):
    from alerts.services.alarms import alarm_clear

    alarm_clear(rule=alarm.rule, device=press, value=70.0, at=at(60))
    body = assert_status(client_for(operator).post(f"{URL}{alarm.pk}/acknowledge/", {}), 200).json()
    assert body["state"] == "closed"
    alarm.refresh_from_db()
    assert alarm.active_key is None


def test_shelves_with_reason_and_unshelves(client_for, operator, alarm):
    client = client_for(operator)
    body = assert_status(client.post(f"{URL}{alarm.pk}/shelve/", {"reason": "Sensor swap", "minutes": 30}), 200).json()
    assert (body["shelved"], body["shelved_reason"], body["shelved_by"]) == (True, "Sensor swap", "operator")
    body = assert_status(client.post(f"{URL}{alarm.pk}/unshelve/", {}), 200).json()
    assert (body["shelved"], body["changed"]) == (False, True)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"minutes": 30}, "reason"),
        ({"reason": "x", "minutes": 100000}, "minutes"),
        ({"reason": "x", "minutes": "a"}, "minutes"),
    ],
)
def test_rejects_shelving_without_reason_or_with_too_long_a_time(client_for, operator, alarm, payload, field):
    body = assert_status(client_for(operator).post(f"{URL}{alarm.pk}/shelve/", payload), 400).json()
    assert field in body["errors"]
    alarm.refresh_from_db()
    assert alarm.shelved_until is None


def test_resolves_with_a_note_and_requires_one(client_for, operator, alarm):
    client = client_for(operator)
    body = assert_status(client.post(f"{URL}{alarm.pk}/resolve/", {"note": ""}), 400).json()
    assert "note" in body["errors"]
    body = assert_status(client.post(f"{URL}{alarm.pk}/resolve/", {"note": "Replaced the fan."}), 200).json()
    assert (body["state"], body["resolution"]) == ("closed", "Replaced the fan.")
    again = assert_status(client.post(f"{URL}{alarm.pk}/shelve/", {"reason": "x", "minutes": 5}), 400).json()
    assert "alarm" in again["errors"]


def test_suppress_needs_the_admin_role(client_for, operator, plant_admin, alarm):
    assert_status(client_for(operator).post(f"{URL}{alarm.pk}/suppress/", {}), 403)
    body = assert_status(
        client_for(plant_admin).post(f"{URL}{alarm.pk}/suppress/", {"comment": "Out of service"}), 200
    ).json()
    assert body["suppressed"] is True
    body = assert_status(client_for(plant_admin).post(f"{URL}{alarm.pk}/unsuppress/", {}), 200).json()
    assert body["suppressed"] is False


def test_answers_kpis_for_a_visible_plant_and_404_for_another(client_for, viewer, alarm, plant_a, plant_b):
    client = client_for(viewer)
    query = {"start": at(-600).isoformat(), "end": at(600).isoformat()}
    body = assert_status(client.get(f"{URL}kpis/", {**query, "plant": plant_a.pk}), 200).json()
    assert body["total_alarms"] == 1
    assert_status(client.get(f"{URL}kpis/", {**query, "plant": plant_b.pk}), 404)
    bad = assert_status(client.get(f"{URL}kpis/", {"plant": plant_a.pk, "start": "yesterday"}), 400).json()
    assert {"start", "end"} <= set(bad["errors"])
    assert timezone.now()  # the KPI call reads the wall clock only for stale alarms


def test_sorts_by_severity_then_age_and_counts_open_alarms_per_plant(
    client_for, viewer, plant_a, line_a, press, foreign_alarm
):
    from alerts.services.alarms import alarm_acknowledge

    info = alarm_raise(rule=make_rule(plant_a, severity="info"), device=press, value=1, at=at(300))
    old_critical = alarm_raise(rule=make_rule(plant_a, severity="critical"), device=press, value=1, at=at(0))
    new_critical = alarm_raise(rule=make_rule(plant_a, severity="critical"), device=press, value=1, at=at(200))
    alarm_acknowledge(alarm=new_critical, by=viewer, now=at(210))
    client = client_for(viewer)
    body = assert_status(client.get(URL), 200).json()
    assert [row["id"] for row in body["results"]] == [new_critical.pk, old_critical.pk, info.pk]
    counts = assert_status(client.get(f"{URL}counts/"), 200).json()
    assert counts == {
        str(plant_a.pk): {"critical": 2, "warning": 0, "info": 1, "unacknowledged": 2, "shelved": 0, "total": 3}
    }
    assert_status(client.get(f"{URL}counts/", {"plant": "x"}), 400)
    other = make_device(line_a, "press-other")
    alarm_raise(rule=make_rule(plant_a, severity="warning"), device=other, value=1, at=at(400))
    per_device = assert_status(client.get(f"{URL}counts/", {"plant": plant_a.pk, "per_device": "true"}), 200).json()
    assert per_device[str(plant_a.pk)]["total"] == 4
    assert per_device[str(plant_a.pk)]["devices"] == {
        str(press.pk): {"critical": 2, "warning": 0, "info": 1, "unacknowledged": 2, "shelved": 0, "total": 3},
        str(other.pk): {"critical": 0, "warning": 1, "info": 0, "unacknowledged": 1, "shelved": 0, "total": 1},
    }


def test_each_alarm_carries_its_machines_current_state(client_for, viewer, alarm, press):
    press.state, press.state_since = "down", at(0)
    press.save(update_fields=["state", "state_since"])
    body = assert_status(client_for(viewer).get(f"{URL}{alarm.pk}/"), 200).json()
    assert body["device_state"] == "down"
