"""MQTT authentication and per-device ACLs on a real Mosquitto configured as production runs it.

Each attack of issue 14 is reproduced against the broker the platform provisions: on the old
configuration (anonymous, no ACLs) every one of them succeeded.
"""

import threading
import uuid
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest
from django.core.management import call_command
from django.db import OperationalError, transaction
from paho.mqtt.enums import CallbackAPIVersion

from conftest import REQUIRE_SERVICES, assert_status
from devices.models import DeviceToken, TelemetryReading
from devices.services import broker
from devices.services.mqtt_bridge import MqttBridge
from devices.services.registry import device_delete, devices_set_enabled
from devices.services.tokens import token_issue, token_revoke, token_rotate
from devices.tests.factories import make_device, make_line
from devices.tests.test_admin_actions import run_action
from tests.mosquitto import PLATFORM_USERNAME, AuthBroker, mosquitto_available
from tests.waiting import wait_until


@contextmanager
def started_auth_broker(tmp_path_factory, name: str, **options):
    """A Mosquitto configured as production runs it (``AuthBroker`` options: ``tls``), for a fixture."""
    if not mosquitto_available():
        (pytest.fail if REQUIRE_SERVICES else pytest.skip)("mosquitto with its dynamic-security plugin is missing")
    server = AuthBroker(tmp_path_factory.mktemp(name), **options)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def auth_broker(tmp_path_factory):
    with started_auth_broker(tmp_path_factory, "mosquitto") as server:
        yield server


@pytest.fixture
def managed(auth_broker, settings, transactional_db):
    auth_broker.settings(settings)
    broker.broker_reconcile()
    return auth_broker


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("mqtt://").split(":")
    return host, int(port)


class Client:
    """A real MQTT v5 client that records what happens to it."""

    def __init__(self, url: str, username=None, password=None, client_id=None):
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"t-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        self.url = url
        self.connack = None
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.messages: list[tuple[str, bytes]] = []
        self.granted: list = []
        self.subscribed = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = lambda *args: self.disconnected.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.client.on_subscribe = self._on_subscribe

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = reason_code
        self.connected.set()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.granted = reason_codes
        self.subscribed.set()

    def connect(self) -> bool:
        """True when the broker accepted the connection."""
        self.client.connect(*host_port(self.url), keepalive=30)
        self.client.loop_start()
        assert self.connected.wait(5) or self.disconnected.wait(1), "no CONNACK"
        return self.connack is not None and not self.connack.is_failure

    def subscribe(self, topic: str) -> bool:
        self.subscribed.clear()
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(5), "no SUBACK"
        return not self.granted[0].is_failure

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients():
    made = []

    def make(url, username=None, password=None, client_id=None) -> Client:
        client = Client(url, username, password, client_id)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def bridge(managed):
    running = MqttBridge(managed.url, client_id=f"factory-mqtt-bridge-{uuid.uuid4().hex[:6]}", session_expiry=60)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    assert running.ready.wait(5), "the bridge did not subscribe with its credentials"
    yield running
    running.stop()
    thread.join(10)


def reading(value: float) -> bytes:
    return f'{{"values": {{"temperature": {value}}}}}'.encode()


def stored(device) -> list[float]:
    return sorted(TelemetryReading.objects.filter(device=device).values_list("value", flat=True))


def wait_stored(device, expected: list[float]) -> None:
    """Wait until ``device`` has exactly ``expected`` readings. OperationalError: SQLite's shared
    in-memory test database says "table is locked" while the bridge's thread commits."""
    wait_until(lambda: stored(device) == expected, 5, f"{device.uid}'s readings {expected}", ignore=(OperationalError,))


@pytest.fixture
def two_devices(managed):
    line = make_line()
    a, b = make_device(line=line, uid=f"press-{uuid.uuid4().hex[:6]}"), make_device(line=line)
    return (a, token_issue(device=a, name="main")[1]), (b, token_issue(device=b, name="main")[1])


def test_device_publishes_with_its_token_and_nothing_else_gets_in(managed, bridge, two_devices, clients):
    (a, token_a), (b, token_b) = two_devices
    other_revoked = token_issue(device=a, name="old")
    token_issue(device=a, name="newest")  # the broker holds a's newest token; "old" is revoked below
    token_revoke(token=other_revoked[0])
    refused = {
        "wrong token": (a.uid, token_a + "x"),
        "revoked token": (a.uid, other_revoked[1]),
        "other device's token": (a.uid, token_b),
        "missing token": (a.uid, None),
        "anonymous": (None, None),
    }
    for what, (username, password) in refused.items():
        assert not clients(managed.device_url, username, password).connect(), f"{what}: connected"
        assert not clients(managed.url, username, password).connect(), f"{what}: connected on the platform listener"

    # b's own token: its readings are stored; the one it sends on a's topic is refused by the broker.
    device_b = clients(managed.device_url, b.uid, token_b)
    assert device_b.connect()
    device_b.publish(f"factory/devices/{a.uid}/telemetry", reading(666))
    device_b.publish(f"factory/devices/{b.uid}/telemetry", reading(1))
    wait_stored(b, [1.0])
    wait_stored(a, [])


def test_anonymous_and_devices_cannot_read_other_topics(managed, two_devices, clients):
    (a, token_a), (b, token_b) = two_devices
    anonymous = clients(managed.device_url)
    assert not anonymous.connect()
    snoop = clients(managed.device_url, b.uid, token_b)
    assert snoop.connect()
    assert not snoop.subscribe("#"), "a device subscribed to every topic"
    assert not snoop.subscribe(f"factory/devices/{a.uid}/commands")
    assert snoop.subscribe(f"factory/devices/{b.uid}/commands")

    device_a = clients(managed.device_url, a.uid, token_a)
    assert device_a.connect()
    assert device_a.subscribe(f"factory/devices/{a.uid}/commands")
    # A forged command from another device never arrives; the platform's does.
    snoop.publish(f"factory/devices/{a.uid}/commands", b'{"name": "firmware_update"}')
    device_a.publish(f"factory/devices/{a.uid}/commands", b'{"name": "self-made"}')
    platform = clients(managed.url, PLATFORM_USERNAME, managed.platform_password)
    assert platform.connect()
    platform.publish(f"factory/devices/{a.uid}/commands", b'{"name": "reboot"}')
    wait_until(lambda: device_a.messages, 5, "the platform's command")
    assert device_a.messages == [(f"factory/devices/{a.uid}/commands", b'{"name": "reboot"}')]
    assert snoop.messages == []


def test_the_bridge_client_id_cannot_be_taken_over(managed, bridge, two_devices, clients):
    (a, token_a), (b, token_b) = two_devices
    assert not clients(managed.url, client_id=bridge.client_id).connect()  # no credentials
    assert not clients(managed.device_url, client_id=bridge.client_id).connect()
    intruder = clients(managed.device_url, b.uid, token_b, client_id=bridge.client_id)
    assert intruder.connect()  # the broker gives it its username as client id instead
    assert not intruder.subscribe("factory/devices/+/telemetry")
    device = clients(managed.device_url, a.uid, token_a)
    assert device.connect()
    for value in range(20):
        device.publish(f"factory/devices/{a.uid}/telemetry", reading(value))
    wait_stored(a, [float(v) for v in range(20)])
    assert intruder.messages == []


def refused_within_a_second(url, username, password, clients) -> None:
    wait_until(lambda: not clients(url, username, password).connect(), 1, f"{username} to be refused")


def test_token_and_device_changes_take_effect_within_a_second(managed, two_devices, clients):
    (a, token_a), _ = two_devices
    url = managed.device_url
    session = clients(url, a.uid, token_a)
    assert session.connect()

    token_revoke(token=DeviceToken.objects.get(device=a))
    assert session.disconnected.wait(1), "the revoked device stayed connected"
    refused_within_a_second(url, a.uid, token_a, clients)

    token, fresh = token_issue(device=a, name="second")
    assert clients(url, a.uid, fresh).connect()

    # Rotation: MQTT moves to the new token at once (one password per device at the broker).
    rotated, newest = token_rotate(token=token, grace_seconds=300)
    assert clients(url, a.uid, newest).connect()
    refused_within_a_second(url, a.uid, fresh, clients)

    session = clients(url, a.uid, newest)
    assert session.connect()
    with transaction.atomic():
        devices_set_enabled(devices=[a], enabled=False)
    assert session.disconnected.wait(1), "the disabled device stayed connected"
    refused_within_a_second(url, a.uid, newest, clients)
    with transaction.atomic():
        devices_set_enabled(devices=[a], enabled=True)
    assert clients(url, a.uid, newest).connect()

    device_delete(device=a)
    refused_within_a_second(url, a.uid, newest, clients)


def test_reconcile_makes_the_broker_match_the_registry_and_is_idempotent(managed, two_devices, clients):
    (a, token_a), (b, token_b) = two_devices
    # Drift behind the platform's back: a's client disabled, a stray device client, b's ACLs emptied.
    broker.broker_device_disable(uid=a.uid)
    broker.broker_device_set_password(uid="gone-device", password="x")
    with broker._control() as control:
        control.send([{"command": "removeRoleACL", "rolename": f"device:{b.uid}", "acltype": "publishClientSend",
                       "topic": f"factory/devices/{b.uid}/#"}])  # fmt: skip
    assert not clients(managed.device_url, a.uid, token_a).connect()
    # A token issued while the platform did not manage the broker: its plain text is gone.
    legacy = make_device(line=a.line)
    DeviceToken.objects.create(device=legacy, name="legacy", prefix=uuid.uuid4().hex[:12], key_hash="0" * 64)

    first = broker.broker_reconcile()
    assert first.changes and legacy.uid in first.need_token
    assert clients(managed.device_url, a.uid, token_a).connect()
    assert not clients(managed.device_url, "gone-device", "x").connect()
    second = broker.broker_reconcile()
    assert second.changes == []
    assert second.need_token == [legacy.uid]

    call_command("mqtt_reconcile")  # the command: same result, still nothing to change
    assert broker.broker_reconcile().changes == []


def test_a_token_is_not_issued_when_the_broker_is_down(managed, settings, plant_a, plant_admin_client):
    a = make_device(line=make_line(plant=plant_a))
    before = DeviceToken.objects.count()
    settings.MQTT_URL = "mqtt://127.0.0.1:1"
    response = plant_admin_client.post(
        f"/api/v1/devices/{a.pk}/tokens/", {"name": "x"}, content_type="application/json"
    )
    assert_status(response, 503)
    assert "Nothing was changed" in response.json()["detail"]
    assert DeviceToken.objects.count() == before


def test_the_admin_actions_reach_the_broker_and_report_when_it_is_down(managed, settings, plant_a, plant_admin_client):
    device = make_device(line=make_line(plant=plant_a))
    _, plain = token_issue(device=device, name="main")
    session = Client(managed.device_url, device.uid, plain)
    assert session.connect()
    try:
        response = run_action(plant_admin_client, "disable", [device], follow=True)
        assert_status(response, 200)
        assert session.disconnected.wait(1), "the device disabled in the admin stayed connected"
        assert not Client(managed.device_url, device.uid, plain).connect()
    finally:
        session.close()

    settings.MQTT_URL = "mqtt://127.0.0.1:1"  # the broker is down: the admin says so and changes nothing
    response = run_action(plant_admin_client, "enable", [device], follow=True)
    assert_status(response, 200)
    assert "Nothing was changed" in response.content.decode()
    device.refresh_from_db()
    assert device.enabled is False


def test_firmware_commands_reach_the_device_with_the_platform_credentials(managed, two_devices, clients):
    from firmware.services.notify import _mqtt_publish

    (a, token_a), _ = two_devices
    device = clients(managed.device_url, a.uid, token_a)
    assert device.connect()
    assert device.subscribe(f"factory/devices/{a.uid}/commands")
    _mqtt_publish([(f"factory/devices/{a.uid}/commands", b'{"type": "firmware_update"}')])
    wait_until(lambda: device.messages, 5, "the firmware command")
    assert device.messages == [(f"factory/devices/{a.uid}/commands", b'{"type": "firmware_update"}')]
