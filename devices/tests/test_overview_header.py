"""The overview's first paint: what a tile and the plant header show for each device (``tile_state``,
``plant_state_counts``), open alarms per severity and on the tiles, the running shift, time in
state, units; the header covers the whole plant whatever the tile filter."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.services.alarms import alarm_raise
from alerts.tests.factories import make_rule
from analytics.tests.factories import make_shift
from conftest import assert_status
from devices.models import Device, Metric
from devices.selectors import plant_state_counts, tile_state
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device, make_line
from devices.views import duration_words

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("cleared_cache")]


def store(device, at, state=None, **values):
    telemetry_store([IngestItem(device=device, messages=[Message(ts=at, values=values, state=state)])], received_at=at)


@pytest.fixture
def floor(plant_a):
    """Two lines: a running press, a down press, a machine without a state yet, a silent machine,
    a reporting sensor, a silent sensor and a reporting gateway."""
    now = timezone.now()
    one, two = make_line(plant_a, "Line 1"), make_line(plant_a, "Line 2")
    devices = {
        "running": make_device(one, "press-01"),
        "down": make_device(one, "press-02"),
        "nostate": make_device(two, "press-03"),
        "silent": make_device(two, "press-04"),
        "sensor": make_device(one, "air-01", kind=Device.Kind.SENSOR, ideal_cycle_time=None),
        "quiet": make_device(two, "air-02", kind=Device.Kind.SENSOR, ideal_cycle_time=None),
        "gateway": make_device(two, "gw-01", kind=Device.Kind.GATEWAY, ideal_cycle_time=None),
    }
    store(devices["running"], now - timedelta(seconds=5), "running", temperature=71.25)
    store(devices["down"], now - timedelta(minutes=12, seconds=5), "down", power=12.5)
    store(devices["down"], now - timedelta(seconds=3), power=12.75)
    store(devices["nostate"], now - timedelta(seconds=5), vibration=1.5)
    store(devices["sensor"], now - timedelta(seconds=5), humidity=41.0)
    store(devices["gateway"], now - timedelta(seconds=5), cpu_load=3.0)
    for device in devices.values():
        device.refresh_from_db()
    return devices


def test_a_tile_shows_a_machines_state_a_sensors_online_and_offline_when_silent(floor):
    now = timezone.now()
    shown = {key: tile_state(device, now) for key, device in floor.items()}
    assert shown == {
        "running": "running",
        "down": "down",
        "nostate": "unknown",
        "silent": "offline",
        "sensor": "online",
        "quiet": "offline",
        "gateway": "online",
    }
    later = now + timedelta(seconds=3 * floor["running"].expected_interval_seconds + 10)
    assert tile_state(floor["running"], later) == tile_state(floor["sensor"], later) == "offline"


def test_state_counts_split_machines_and_sensors_with_every_state_present(floor):
    counts = plant_state_counts(list(floor.values()), timezone.now())
    assert counts == {
        "machines": {"running": 1, "idle": 0, "setup": 0, "down": 1, "planned_stop": 0, "offline": 1, "unknown": 1},
        "sensors": {"online": 2, "offline": 1},
    }


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (59.9, "59 s"), (60, "1 min"), (12 * 60 + 30, "12 min"), (3600, "1 h"), (7500, "2 h 5 min"),
     (26 * 3600 + 40 * 60, "1 d 2 h"), (3 * 86400, "3 d"), (-5, "0 s")],
)  # fmt: skip
def test_duration_words(seconds, words):
    assert duration_words(seconds) == words


def header_number(html: str, box: str, key: str) -> int:
    block = html[html.index(f'id="{box}"') :]
    item = re.search(rf'data-(?:state|severity)="{key}"[^>]*>.*?data-role="n">(\d+)<', block, re.S)
    return int(item.group(1))


def tile_html(html: str, device) -> str:
    at = html.index(f'id="tile-{device.pk}"')
    return html[html.rindex("<li", 0, at) : html.index("</li>", at)]


def test_overview_header_counts_the_whole_plant_with_alarms_shift_and_time_in_state(client_for, viewer, plant_a, floor):
    now = timezone.now()
    make_shift(plant_a, "All day", "00:00", "00:00")
    Metric.objects.filter(name="power").update(unit="kW")
    warning = make_rule(plant_a, name="Hot", metric="power", threshold=10.0, severity="warning")
    critical = make_rule(plant_a, name="Very hot", metric="power", threshold=12.0, severity="critical")
    alarm_raise(rule=warning, device=floor["down"], value=12.75, at=now)
    alarm_raise(rule=critical, device=floor["down"], value=12.75, at=now)
    alarm_raise(rule=warning, device=floor["running"], value=71.25, at=now)

    line_two = floor["nostate"].line_id  # the tiles show line 2 only; the header, the whole plant
    html = assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/?line={floor['down'].line_id}"), 200)
    html = html.content.decode()
    assert line_two != floor["down"].line_id and "press-03" not in html.split('id="tiles"')[1]
    for state, n in {"running": 1, "down": 1, "unknown": 1, "offline": 1, "idle": 0}.items():
        assert header_number(html, "machine-counts", state) == n, state
    assert header_number(html, "sensor-counts", "online") == 2
    assert header_number(html, "sensor-counts", "offline") == 1
    assert header_number(html, "alarm-counts", "critical") == 1
    assert header_number(html, "alarm-counts", "warning") == 2
    assert header_number(html, "alarm-counts", "info") == 0
    assert re.search(r'data-role="name">All day<', html)
    assert re.search(r'data-role="left">\d+ (h|min|s)[\w ]* left<', html)

    down = tile_html(html, floor["down"])
    assert "state-down" in down and "alarm-critical" in down and "has-alarms" in down
    assert 'data-alarm="critical"' in down and 'data-role="alarms" title="Open alarms">2<' in down
    assert ">for 12 min<" in down
    assert ">12.75<" in down and 'data-role="unit">kW<' in down
    sensor = tile_html(html, floor["sensor"])
    assert "state-online" in sensor and 'data-role="state">online<' in sensor


def test_overview_without_shifts_says_so(client_for, viewer, plant_a, floor):
    html = assert_status(client_for(viewer).get(f"/plants/{plant_a.pk}/"), 200).content.decode()
    assert 'data-role="name">No shift<' in html and 'data-role="left">none planned<' in html
