"""Publishing commands to ``factory/devices/<uid>/commands`` with the platform's broker credentials.

MQTT 5 lets the publisher learn whether anyone received a message: Mosquitto answers a QoS 1
PUBLISH that matched no subscription with the PUBACK reason code 16 ("No matching subscribers").
That tells a command the device is subscribed to (``delivered``) from one it missed (it stays
``pending`` and the device finds it by polling).
"""

import threading

from django.conf import settings

from commands.exceptions import TransientDeliveryError
from devices.services.broker import broker_address, mqtt_client

NO_MATCHING_SUBSCRIBERS = 16
TIMEOUT = 10.0


def commands_topic(uid: str) -> str:
    return f"factory/devices/{uid}/commands"


def result_topic(uid: str) -> str:
    return f"factory/devices/{uid}/commands/result"


def mqtt_publish(messages: list[tuple[str, bytes]]) -> list[bool]:
    """Publish each ``(topic, payload)`` at QoS 1 over one connection; for each, whether a
    subscriber matched. Raises ``TransientDeliveryError`` when the broker is unreachable, refuses
    the platform or does not acknowledge within ``TIMEOUT`` seconds."""
    password = settings.MQTT_PLATFORM_PASSWORD or None
    client = mqtt_client(username=settings.MQTT_PLATFORM_USERNAME if password else None, password=password)
    connected, acked = threading.Event(), threading.Event()
    refused: list[str] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    expected: set[int] = set()

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            refused.append(str(reason_code))
        connected.set()

    def on_publish(client, userdata, mid, reason_code, properties):
        with lock:
            codes[mid] = reason_code.value
            if expected and expected <= codes.keys():
                acked.set()

    client.on_connect, client.on_publish = on_connect, on_publish
    host, port, _ = broker_address()
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise TransientDeliveryError(f"MQTT broker at {host}:{port} unreachable: {exc}") from exc
    client.loop_start()
    try:
        if not connected.wait(TIMEOUT) or refused:
            raise TransientDeliveryError(f"MQTT broker refused or ignored the platform: {refused or 'no CONNACK'}")
        mids = [client.publish(topic, payload, qos=1).mid for topic, payload in messages]
        with lock:
            expected.update(mids)
            if expected <= codes.keys():
                acked.set()
        if not acked.wait(TIMEOUT):
            raise TransientDeliveryError(f"MQTT broker acknowledged {len(codes)} of {len(mids)} commands")
        refused = [code for code in (codes[mid] for mid in mids) if code >= 0x80]
        if refused:
            raise TransientDeliveryError(f"MQTT broker refused commands (reason code {refused[0]})")
        return [codes[mid] != NO_MATCHING_SUBSCRIBERS for mid in mids]
    finally:
        client.disconnect()
        client.loop_stop()
