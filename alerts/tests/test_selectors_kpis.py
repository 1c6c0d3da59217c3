"""Alarm KPIs (ISA-18.2 / EEMUA 191) over a scripted hour, through the lifecycle services."""

import pytest

from alerts.selectors import alarm_kpis
from alerts.services.alarms import alarm_acknowledge, alarm_clear, alarm_raise
from alerts.tests.factories import at, make_rule
from devices.tests.factories import make_device

pytestmark = pytest.mark.django_db


def test_computes_rates_flood_chatter_stale_bad_actors_priorities_and_mtta(plant_a, press, line_a, operator):
    chatty = make_rule(plant_a, name="Chatty")
    for seconds, raise_it in [(0, True), (10, False), (20, True), (30, False), (40, True)]:
        (alarm_raise if raise_it else alarm_clear)(rule=chatty, device=press, value=1.0, at=at(seconds))
    slow = alarm_raise(
        rule=make_rule(plant_a, name="Slow"), device=make_device(line_a, "press-02"), value=1, at=at(900)
    )
    alarm_acknowledge(alarm=slow, by=operator, now=at(1020))
    for n in range(11):
        alarm_raise(
            rule=make_rule(plant_a, name=f"Flood {n}", severity="critical"), device=press, value=1, at=at(1200 + n)
        )
    alarm_raise(rule=make_rule(plant_a, name="Old"), device=press, value=1, at=at(-2 * 86400))

    kpis = alarm_kpis(plant=plant_a, start=at(0), end=at(3600), now=at(3600))

    assert kpis["total_alarms"] == 15
    assert (kpis["alarms_per_10min_avg"], kpis["alarms_per_10min_peak"]) == (2.5, 11)
    assert (kpis["flood_windows"], kpis["flood_percent"]) == (1, 16.67)
    assert kpis["chattering"] == [{"rule_id": chatty.pk, "device_id": press.pk}]
    assert kpis["stale_alarms"] == 1
    assert kpis["top_bad_actors"][0] == {
        "rule_id": chatty.pk,
        "rule": "Chatty",
        "device_id": press.pk,
        "device": "press-01",
        "count": 3,
    }
    assert len(kpis["top_bad_actors"]) == 10
    assert kpis["priority_distribution"] == {"critical": 11, "warning": 4, "info": 0}
    assert kpis["mean_time_to_acknowledge_seconds"] == 120.0
    assert [w["count"] for w in kpis["series"]] == [3, 1, 11, 0, 0, 0]


def test_answers_zeros_for_a_quiet_plant(plant_a):
    kpis = alarm_kpis(plant=plant_a, start=at(0), end=at(600), now=at(600))
    assert (kpis["total_alarms"], kpis["alarms_per_10min_peak"], kpis["mean_time_to_acknowledge_seconds"]) == (
        0,
        0,
        None,
    )
