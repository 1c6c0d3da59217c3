"""The in-app notifier and the alarm live events on the plant's channel-layer group."""

import asyncio

import pytest

from alerts.models import Alarm
from alerts.tests.factories import make_channel, make_route, make_rule, post_readings
from live import bus

pytestmark = pytest.mark.django_db


def test_publishes_in_app_notification_and_alarm_events_on_the_plant_group(run, plant_a, press, settings):
    from asgiref.sync import async_to_sync
    from channels.layers import channel_layers, get_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends = {}
    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"live.plant.{plant_a.pk}", name)
    make_rule(plant_a, name="Hot", action="Cool it")
    make_route(make_channel(plant_a, "inapp"))
    run(post_readings, press, (0, 99))
    # No server loop in this process: the bus's own loop sends; read the layer once it has.
    assert bus.flush()

    async def drain():
        received = []
        while True:
            try:
                received.append((await asyncio.wait_for(layer.receive(name), 0.1))["event"])
            except TimeoutError:
                return received

    # The plant group also carries the dashboard's telemetry events: keep the alerts' kinds.
    events = [event for event in async_to_sync(drain)() if event["kind"] in ("alarm", "notification")]
    channel_layers.backends = {}
    alarm = Alarm.objects.get()
    assert events[0] == {
        "kind": "alarm", "id": alarm.pk, "device_id": press.pk, "plant_id": plant_a.pk, "rule": "Hot",
        "severity": "warning", "state": "active_unack", "shelved": False, "message": "press-01: Hot (value 99.0 °C)",
        "action": "Cool it", "value": 99.0, "raised_at": "2026-11-26T08:00:00Z", "acknowledged_at": None,
    }  # fmt: skip
    assert events[1] == {
        "kind": "notification", "severity": "warning", "title": "[WARNING] press-01: Hot",
        "body": events[1]["body"], "alarm_id": alarm.pk,
    }  # fmt: skip
    assert "press-01: Hot" in events[1]["body"]
