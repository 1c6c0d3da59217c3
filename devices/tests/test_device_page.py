"""The machine and sensor page as served, and the reads behind it: open alarms, what the machine is
doing now and why it stopped, the thresholds drawn on its charts, the 24-hour state strip."""

import json
import re
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from alerts.models import AlertRule
from alerts.selectors import device_open_alarms, device_thresholds
from alerts.services.alarms import alarm_acknowledge, alarm_clear, alarm_raise
from alerts.tests.factories import make_rule
from analytics.models import ReasonCode, StopReason
from analytics.selectors import machine_now
from conftest import assert_status
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device, make_group

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cleared_cache")]


@pytest.fixture
def press(line_a):
    return make_device(line_a, "press-01")


def post(device, at, state=None, received_at=None, **values):
    message = Message(ts=at, values=values, state=state)
    telemetry_store([IngestItem(device=device, messages=[message])], received_at=received_at or timezone.now())
    device.refresh_from_db()


def page(client, device) -> str:
    return assert_status(client.get(f"/devices/{device.pk}/"), 200).content.decode()


def config_of(html: str) -> dict:
    return json.loads(re.search(r'<script id="page-config" type="application/json">(.*?)</script>', html, re.S)[1])


def test_thresholds_are_those_of_enabled_level_rules_in_the_devices_scope(plant_a, plant_b, line_a, press):
    other = make_device(line_a, "press-02")
    group = make_group(plant_a, "Presses", devices=[press])
    make_rule(plant_a, name="Hot", metric="temperature", threshold=90.0, severity="critical")
    make_rule(plant_a, name="Cold", metric="temperature", condition="lt", threshold=5.0, scope="group", group=group)
    make_rule(plant_a, name="Band", metric="pressure", condition="outside", threshold=1.5, threshold_high=6.0)
    make_rule(plant_a, name="Mine only", metric="vibration", threshold=7.0, scope="device", device=press)
    make_rule(plant_a, name="Theirs", metric="vibration", threshold=3.0, scope="device", device=other)
    make_rule(plant_a, name="Off", metric="vibration", threshold=4.0, enabled=False)
    make_rule(plant_a, name="Jumpy", metric="vibration", condition="rate", threshold=2.0)
    make_rule(plant_a, name="Other model", metric="vibration", threshold=2.5, device_model="XY-1")
    make_rule(plant_a, name="Stopped", metric="", condition="state", state="down", threshold=None)
    make_rule(plant_b, name="Foreign", metric="temperature", threshold=50.0)

    assert device_thresholds(press) == {
        "pressure": [
            {"value": 1.5, "op": "<", "rule": "Band", "severity": "warning"},
            {"value": 6.0, "op": ">", "rule": "Band", "severity": "warning"},
        ],
        "temperature": [
            {"value": 5.0, "op": "<", "rule": "Cold", "severity": "warning"},
            {"value": 90.0, "op": ">", "rule": "Hot", "severity": "critical"},
        ],
        "vibration": [{"value": 7.0, "op": ">", "rule": "Mine only", "severity": "warning"}],
    }
    assert "temperature" in device_thresholds(other) and "Cold" not in str(device_thresholds(other))


def test_open_alarms_are_critical_first_then_oldest_without_closed_ones(plant_a, press):
    now = timezone.now()
    warning = make_rule(plant_a, name="Warm", threshold=70.0)
    critical = make_rule(plant_a, name="Hot", threshold=90.0, severity="critical")
    closed = make_rule(plant_a, name="Was hot", threshold=95.0)
    first = alarm_raise(rule=warning, device=press, value=75.0, at=now - timedelta(minutes=5))
    second = alarm_raise(rule=critical, device=press, value=95.0, at=now - timedelta(minutes=1))
    gone = alarm_raise(rule=closed, device=press, value=96.0, at=now - timedelta(minutes=9))
    alarm_acknowledge(alarm=gone, by=None, now=now)
    alarm_clear(rule=closed, device=press, value=20.0, at=now)
    assert [a.pk for a in device_open_alarms(press)] == [second.pk, first.pk]


def test_machine_now_is_the_stop_with_its_reason_or_offline_since_last_seen(plant_a, press, settings):
    settings.DEVICE_EXPECTED_INTERVAL = 60
    now = timezone.now().replace(microsecond=0)
    post(press, now - timedelta(minutes=30), state="running", temperature=70.0)
    assert machine_now(press, now) == {
        "state": "running",
        "since": now - timedelta(minutes=30),
        "stop": False,
        "reason": None,
    }

    post(press, now - timedelta(minutes=12), state="down", temperature=71.0)
    assert machine_now(press, now) == {
        "state": "down",
        "since": now - timedelta(minutes=12),
        "stop": True,
        "reason": None,
    }

    code = ReasonCode.objects.create(plant=plant_a, code="tool", name="Tool breakage", category="equipment_failure")
    StopReason.objects.create(device=press, start=now - timedelta(minutes=12), reason=code, note="punch 3")
    assert machine_now(press, now)["reason"] == {
        "id": code.pk, "code": "tool", "name": "Tool breakage", "category": "Equipment failure", "note": "punch 3"
    }  # fmt: skip
    later = now + timedelta(minutes=10)  # nothing heard for more than three expected intervals
    assert machine_now(press, later) == {"state": "offline", "since": press.last_seen_at, "stop": True, "reason": None}


def test_machine_page_shows_the_stop_its_reason_open_alarms_thresholds_and_strip_in_plant_time(
    client_for, viewer, plant_a, press
):
    now = timezone.now().replace(microsecond=0)
    post(press, now - timedelta(hours=2), state="running", temperature=70.0)
    post(press, now - timedelta(minutes=12), state="down", temperature=97.0)
    code = ReasonCode.objects.create(plant=plant_a, code="tool", name="Tool breakage", category="equipment_failure")
    StopReason.objects.create(device=press, start=now - timedelta(minutes=12), reason=code)
    rule = make_rule(plant_a, name="Overheating", threshold=90.0, severity="critical", action="Call maintenance.")
    alarm = alarm_raise(rule=rule, device=press, value=97.0, at=now - timedelta(minutes=12))

    html = page(client_for(viewer), press)
    since = (now - timedelta(minutes=12)).astimezone(plant_a.tz)
    now_card = html[html.index('id="machine-now"') : html.index('id="h-alarms"')]
    assert 'data-state="down"' in now_card and f">{since:%Y-%m-%d %H:%M}</time>" in now_card
    assert "Tool breakage (Equipment failure)" in now_card
    assert f'data-alarm="{alarm.pk}"' in html and "Overheating" in html and "Call maintenance." in html
    assert "Active, not acknowledged" in html and f'/plants/{plant_a.pk}/alarms/#alarm-{alarm.pk}"' in html
    assert '<li class="sev-critical" data-value="90">Overheating: &gt; 90 °C (critical)</li>' in html
    assert config_of(html)["thresholds"] == {
        "temperature": [{"value": 90.0, "op": ">", "rule": "Overheating", "severity": "critical"}]
    }
    assert config_of(html)["tz"] == "Europe/Berlin" and "plant time (Europe/Berlin)" in html
    # The strip: no data before the first state, running, then down; a legend; hour ticks every
    # 3 hours of plant time.
    assert list(re.findall(r'<rect class="seg state-(\w+)" data-state', html)) == ["nodata", "running", "down"]
    for label in ("Running", "Down", "Planned stop", "Offline", "No data"):
        assert f"</svg>{label}</li>" in html
    ticks = re.findall(r'text-anchor="middle">(\d\d:\d\d)</text>', html)
    assert len(ticks) == 8 and all(int(t[:2]) % 3 == 0 and t.endswith(":00") for t in ticks)
    first_tick = (now - timedelta(hours=24)).astimezone(plant_a.tz)
    assert int(ticks[0][:2]) == (first_tick.hour // 3 * 3 + 3) % 24


def test_sensor_page_has_no_machine_sections(client_for, viewer, plant_a, line_a):
    sensor = make_device(line_a, "hall-temp", kind="sensor", ideal_cycle_time=None)
    post(sensor, timezone.now(), temperature=21.5)
    make_rule(plant_a, name="Hall hot", threshold=30.0)
    html = page(client_for(viewer), sensor)
    sections = ('id="machine-now"', 'id="state-strip-section"', "State, last 24 h", "OEE today", "Ideal cycle time")
    for machine_only in sections:
        assert machine_only not in html
    assert 'id="device-alarms"' in html and 'data-metric="temperature"' in html
    assert "Hall hot: &gt; 30 °C (warning)" in html
    assert 'id="device-state">online<' in html


def test_offline_machine_strip_ends_its_last_state_when_it_went_silent(client_for, viewer, press, settings):
    settings.DEVICE_EXPECTED_INTERVAL = 60
    now = timezone.now()
    post(press, now - timedelta(hours=3), state="running", received_at=now - timedelta(hours=3), temperature=70.0)
    post(press, now - timedelta(hours=2), received_at=now - timedelta(hours=2), temperature=71.0)
    html = page(client_for(viewer), press)
    assert re.findall(r'<rect class="seg state-(\w+)" data-state', html) == ["nodata", "running", "offline"]
    offline_from = float(re.search(r'data-state="offline" x="([\d.]+)%"', html)[1])
    assert offline_from == pytest.approx(22 / 24 * 100, abs=0.05), "offline from when it was last heard of"
    now_card = html[html.index('id="machine-now"') : html.index('id="h-alarms"')]
    assert 'data-state="offline"' in now_card and "Check its power and network." in now_card
    assert 'id="device-state">offline<' in html


def test_machine_that_never_reported_says_so_instead_of_empty_charts(client_for, viewer, press):
    html = page(client_for(viewer), press)
    assert "This device has never sent a reading" in html
    assert "No machine state reported in the last 24 hours: the device is offline." in html
    assert 'class="chart"' not in html


def test_alarm_list_is_scoped_to_the_device(client_for, viewer, plant_a, line_a, press):
    other = make_device(line_a, "press-02")
    rule = make_rule(plant_a, name="Hot", threshold=90.0)
    mine = alarm_raise(rule=rule, device=press, value=95.0, at=timezone.now().astimezone(UTC))
    theirs = alarm_raise(rule=rule, device=other, value=95.0, at=timezone.now())
    html = page(client_for(viewer), press)
    assert f'data-alarm="{mine.pk}"' in html and f'data-alarm="{theirs.pk}"' not in html
    assert AlertRule.objects.count() == 1
