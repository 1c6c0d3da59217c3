"""A device's side of MQTT for tests: a real client that publishes and waits until the broker has it."""

import contextlib
import json
import uuid
from urllib.parse import urlparse


@contextlib.contextmanager
def mqtt_publisher(url: str, client_id: str | None = None):
    """A connected MQTT v5 client on ``url`` (``mqtt://host:port``); yields
    ``publish(topic, payload, qos=1)`` (``payload``: bytes, or JSON-encoded), which returns once
    the broker has the message (QoS 1) or it is sent (QoS 0)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    parsed = urlparse(url)
    client_id = client_id or f"test-pub-{uuid.uuid4().hex[:10]}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(parsed.hostname, parsed.port or 1883)
    client.loop_start()

    def publish(topic: str, payload, qos: int = 1) -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        info = client.publish(topic, body, qos=qos)
        info.wait_for_publish(5)
        assert info.is_published(), f"the broker did not take the message on {topic}"

    try:
        yield publish
    finally:
        client.disconnect()
        client.loop_stop()
