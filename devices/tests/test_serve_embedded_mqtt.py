"""The embedded default with MQTT (`make run` with MQTT_URL, no Redis): a reading published over MQTT
reaches a browser stream.

Without Redis the channel layer is in-memory: a separate bridge process would publish its live
events into its own process, and no browser would see MQTT data move. ``manage.py serve`` runs the
bridge as a thread of the web process then. A real server runs that command against the real
broker; a real WebSocket client follows plant A; a real MQTT client publishes a reading.
"""

import uuid

import pytest

from conftest import require_service
from tests.mqtt import mqtt_publisher
from tests.servers import live_stream, next_event, seeded_stack


@pytest.fixture
def embedded_with_mqtt(tmp_path):
    broker = require_service("MQTT_URL")
    seed = "from tests.e2e_seed import seed; seed(devices=1, sensor=False)"
    env = {
        "REDIS_URL": None,  # the embedded default: in-memory channel layer
        "MQTT_URL": broker,
        "MQTT_BRIDGE_CLIENT_ID": f"serve-test-{uuid.uuid4().hex[:8]}",
    }
    with seeded_stack(tmp_path, seed, env=env, embedded=True) as (server, seeded):
        yield broker, server, seeded


def test_a_reading_published_over_mqtt_reaches_a_browser_of_the_web_process(embedded_with_mqtt):
    broker, server, seeded = embedded_with_mqtt
    press = seeded["devices"]["press-001"]
    stream = live_stream(server, "operator", seeded["password"], seeded["plants"]["A"])
    with stream as browser, mqtt_publisher(broker) as publish:
        # Until the bridge has subscribed, a QoS 1 message to nobody is dropped: publish again each second.
        def send():
            publish("factory/devices/press-001/telemetry", {"values": {"temperature": 64.25}})

        reading, frames = next_event(browser, "telemetry", timeout=15, before_each=send)
    assert reading is not None, f"no telemetry within 15 s; frames: {frames}; server log: {server.log_tail()}"
    assert reading["device_id"] == press["id"]
    assert reading["values"]["temperature"]["value"] == 64.25
