"""The MQTT bridge against the real Mosquitto: a real paho publisher, the bridge in a thread.

Other bridges may share the broker (the topic is fixed by CONTRACT.md), so every test uses its
own device uids and client ids and asserts on its own devices' rows only.
"""

import getpass
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from datetime import timedelta
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection, transaction
from django.utils import timezone
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from conftest import REQUIRE_SERVICES, require_service
from devices.models import DeadLetter, TelemetryReading
from devices.services.mqtt_bridge import MqttBridge, Received, bridge_process
from devices.signals import telemetry_ingested
from devices.tests.factories import make_device, make_line
from tests.mqtt import mqtt_publisher
from tests.servers import free_port, port_open
from tests.waiting import wait_until


def on_broker(test):
    """A test with the real broker; the bridge stores from its own thread, so rows must really commit."""
    return pytest.mark.services(pytest.mark.django_db(transaction=True)(test))


def iso(at) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_for(predicate, what: str, timeout: float = 5.0):
    """Poll ``predicate`` until it returns something truthy; the bridge commits from its own thread.
    OperationalError: SQLite's shared in-memory test database says "table is locked" mid-commit."""
    return wait_until(predicate, timeout, what, ignore=(OperationalError,))


def readings(device) -> list[tuple[str, float]]:
    rows = TelemetryReading.objects.filter(device=device).order_by("ts", "metric__name")
    return list(rows.values_list("metric__name", "value"))


def dead_letters(uid: str) -> list[DeadLetter]:
    return list(DeadLetter.objects.filter(device_uid=uid).order_by("received_at"))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _remove_session(url: str, client_id: str) -> None:
    """Connect with a clean start and no session expiry: Mosquitto forgets the test's session."""
    parsed = urlparse(url)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    client.connect(parsed.hostname, parsed.port or 1883, clean_start=True, properties=properties)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


class Broker:
    """A private Mosquitto with persistence, which a test may stop and start again."""

    def __init__(self, directory):
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self.config = directory / "mosquitto.conf"
        # "user": started as root, Mosquitto would switch to its own user, which cannot write here.
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
            f"persistence true\npersistence_location {directory}/\n"
        )
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)], stderr=subprocess.DEVNULL)
        wait_for(lambda: port_open(self.port), "the broker to listen")

    def stop(self) -> None:
        self.process.terminate()  # Mosquitto writes its sessions to disk on the way out
        self.process.wait(10)


@pytest.fixture
def own_broker(tmp_path):
    if shutil.which("mosquitto") is None:
        (pytest.fail if REQUIRE_SERVICES else pytest.skip)("the mosquitto binary is not installed")
    broker = Broker(tmp_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def mqtt_url(request):
    """The shared broker of MQTT_URL, or with ``indirect`` parameter "own" a private one (``own_broker``)."""
    if getattr(request, "param", None) == "own":
        return request.getfixturevalue("own_broker").url
    return require_service("MQTT_URL")


@pytest.fixture
def bridges(mqtt_url):
    """``start(client_id=None, **options)``: a bridge running in a thread, subscribed.

    Stops every bridge at the end and removes their sessions from the broker.
    """
    started = []

    def start(client_id: str | None = None, **options) -> MqttBridge:
        options.setdefault("session_expiry", 300)
        bridge = MqttBridge(mqtt_url, client_id=client_id or unique("test-bridge"), **options)
        bridge.thread = threading.Thread(target=bridge.run, daemon=True)
        bridge.thread.start()
        started.append(bridge)
        assert bridge.ready.wait(5), "the bridge did not subscribe"
        return bridge

    yield start
    for bridge in started:
        stop(bridge)
    for client_id in {bridge.client_id for bridge in started}:
        _remove_session(mqtt_url, client_id)


def stop(bridge: MqttBridge) -> None:
    bridge.stop()
    bridge.thread.join(15)
    assert not bridge.thread.is_alive(), "the bridge did not stop"


@pytest.fixture
def publish(mqtt_url):
    """``publish(uid, payload, qos=1)``: publish with a real client and wait until the broker has it."""
    with mqtt_publisher(mqtt_url, client_id=unique("test-pub")) as send:
        yield lambda uid, payload, qos=1: send(f"factory/devices/{uid}/telemetry", payload, qos=qos)


@pytest.fixture
def line(db):
    return make_line()


@pytest.fixture
def device(line):
    return make_device(line, uid=unique("press"))


@on_broker
@pytest.mark.parametrize("qos", [1, 0])
def test_stores_reading_and_state_when_device_publishes_one_message(bridges, publish, device, qos):
    bridge = bridges()
    at = timezone.now() - timedelta(seconds=5)
    publish(device.uid, {"ts": iso(at), "values": {"temperature": 71.5}, "state": "running"}, qos=qos)
    wait_for(lambda: readings(device) == [("temperature", 71.5)], "the reading")
    device.refresh_from_db()
    assert (device.state, device.state_since, device.online) == (
        "running",
        at.replace(microsecond=at.microsecond // 1000 * 1000),
        True,
    )
    if qos == 1:
        wait_for(lambda: bridge.stats["acked"] >= 1, "the acknowledgement")
    assert dead_letters(device.uid) == []


@on_broker
def test_stores_every_message_when_payload_uses_the_messages_form(bridges, publish, device):
    bridges()
    start = timezone.now() - timedelta(seconds=30)
    messages = [
        {"ts": iso(start + timedelta(seconds=i)), "values": {"count_total": 100 + i, "count_good": 99 + i}}
        for i in range(3)
    ]
    publish(device.uid, {"messages": messages})
    wait_for(lambda: len(readings(device)) == 6, "six readings")
    assert readings(device) == [
        ("count_good", 99.0), ("count_total", 100.0), ("count_good", 100.0), ("count_total", 101.0),
        ("count_good", 101.0), ("count_total", 102.0),
    ]  # fmt: skip


@on_broker
def test_stores_devices_of_one_batch_in_one_transaction(bridges, publish, line):
    devices = [make_device(line, uid=unique(f"sensor{i}"), kind="sensor") for i in range(3)]
    bridges(flush_interval=0.5)  # the three messages arrive well within one batch window
    at = timezone.now() - timedelta(seconds=2)
    for i, device in enumerate(devices):
        publish(device.uid, {"ts": iso(at), "values": {"temperature": 20.0 + i}})
    wait_for(lambda: all(readings(d) for d in devices), "a reading of every device")
    assert [readings(d) for d in devices] == [[("temperature", 20.0)], [("temperature", 21.0)], [("temperature", 22.0)]]
    for device in devices:
        device.refresh_from_db()
    assert len({device.last_seen_at for device in devices}) == 1  # one telemetry_store call, one receive time


@on_broker
def test_keeps_dead_letters_with_reason_and_stores_valid_messages_of_the_same_batch(bridges, publish, line):
    good, bad = make_device(line, uid=unique("good")), make_device(line, uid=unique("bad"))
    ghost = unique("ghost")
    bridge = bridges(flush_interval=0.5)
    at = timezone.now() - timedelta(seconds=2)
    publish(bad.uid, {"ts": iso(at), "values": {"temperature": "hot"}})
    publish(ghost, {"ts": iso(at), "values": {"temperature": 20.5}})
    publish(bad.uid, {"messages": [{"ts": iso(at), "values": {"ok": 1}}, {"values": {"Bad-Name": 1}}]}, qos=0)
    publish(bad.uid, b"{not json")
    publish(good.uid, {"ts": iso(at), "values": {"temperature": 20.0}})
    wait_for(lambda: readings(good) == [("temperature", 20.0)], "the valid reading")
    wait_for(lambda: len(dead_letters(bad.uid)) == 3, "three dead letters of the bad device")
    reasons = [letter.reason for letter in dead_letters(bad.uid)]
    assert reasons[0] == "values.temperature: Must be a number, not str."
    assert reasons[1].startswith("messages[1].values.Bad-Name: Metric names match")
    assert reasons[2].startswith("payload: Body is not valid JSON")
    assert {(letter.device_id, letter.transport, letter.topic) for letter in dead_letters(bad.uid)} == {
        (bad.pk, "mqtt", f"factory/devices/{bad.uid}/telemetry")
    }
    assert dead_letters(bad.uid)[2].payload == "{not json"
    [unknown] = wait_for(lambda: dead_letters(ghost), "the unknown device's dead letter")
    assert (unknown.device_id, unknown.reason) == (None, f"topic: unknown device uid '{ghost}'.")
    assert readings(bad) == []  # a message with one bad part is refused whole (CONTRACT.md)
    wait_for(lambda: bridge.stats["acked"] >= 4, "the acknowledgements of the QoS 1 dead letters too")


@on_broker
def test_keeps_dead_letter_when_device_is_disabled(bridges, publish, line):
    device = make_device(line, uid=unique("off"), enabled=False)
    bridges()
    publish(device.uid, {"values": {"temperature": 20.0}})
    [letter] = wait_for(lambda: dead_letters(device.uid), "the dead letter")
    assert (letter.device_id, letter.reason) == (
        device.pk,
        f"device: '{device.uid}' is disabled; its messages are refused.",
    )
    assert readings(device) == []


@on_broker
def test_acknowledges_later_batches_while_after_commit_hooks_run_then_runs_every_hook_in_order_on_stop(
    bridges, publish, device
):
    """The hooks (live events, alert evaluation...) run in the bridge's second thread: a slow one
    delays neither the storing nor the acknowledgements, and stop() waits for all of them."""
    release, calls = threading.Event(), []

    def slow_receiver(sender, *, items, **kwargs):
        calls.append([message.values["temperature"] for item in items for message in item.messages])
        release.wait(10)  # the first call holds the hooks thread until the test releases it

    telemetry_ingested.connect(slow_receiver, dispatch_uid="test-slow-receiver")
    try:
        bridge = bridges(flush_interval=0.01, batch_size=1)  # one message per batch and commit
        start = timezone.now() - timedelta(seconds=10)
        for i in range(4):
            publish(device.uid, {"ts": iso(start + timedelta(seconds=i)), "values": {"temperature": float(i)}})
            wait_for(lambda i=i: len(readings(device)) == i + 1, f"reading {i}")
        wait_for(lambda: bridge.stats["acked"] == 4, "every acknowledgement while the first hook still runs")
        assert calls == [[0.0]]
        assert bridge.hooks.queue.qsize() == 3  # the other commits' hooks wait their turn
        threading.Timer(0.3, release.set).start()
        stop(bridge)  # returns once every hook of what was committed has run
        assert calls == [[0.0], [1.0], [2.0], [3.0]]
    finally:
        release.set()
        telemetry_ingested.disconnect(dispatch_uid="test-slow-receiver")


@on_broker
def test_shares_the_messages_between_bridges_of_one_shared_group(bridges, publish, device):
    group = unique("group")
    first, second = bridges(shared_group=group), bridges(shared_group=group)
    start = timezone.now() - timedelta(seconds=30)
    for i in range(20):
        publish(device.uid, {"ts": iso(start + timedelta(seconds=i)), "values": {"temperature": float(i)}})
    wait_for(lambda: len(readings(device)) == 20, "twenty readings")
    wait_for(lambda: first.stats["acked"] + second.stats["acked"] == 20, "every acknowledgement")
    assert readings(device) == [("temperature", float(i)) for i in range(20)]
    assert first.stats["accepted"] + second.stats["accepted"] == 20  # each message went to one of them
    assert first.stats["accepted"] > 0 and second.stats["accepted"] > 0


def test_command_refuses_a_shared_group_name_with_topic_characters(settings):
    settings.MQTT_URL = "mqtt://127.0.0.1:1"
    with pytest.raises(CommandError, match="--shared-group must be a non-empty name"):
        call_command("mqtt_bridge", "--shared-group", "a/b")


def held(bridge, uid) -> int:
    return sum(1 for item in bridge.held() if uid in item.topic)


@on_broker
def test_stores_and_acknowledges_held_messages_when_stopped(bridges, publish, device):
    bridge = bridges(flush_interval=60, batch_size=1000)  # nothing is stored before stop()
    start = timezone.now() - timedelta(seconds=10)
    for i in range(5):
        publish(device.uid, {"ts": iso(start + timedelta(seconds=i)), "values": {"temperature": float(i)}})
    wait_for(lambda: held(bridge, device.uid) == 5, "five held messages")
    assert readings(device) == []
    stop(bridge)
    assert readings(device) == [("temperature", float(i)) for i in range(5)]
    # Acknowledged: the same session gets none of them again, only what is published next.
    again = bridges(client_id=bridge.client_id)
    publish(device.uid, {"ts": iso(start + timedelta(seconds=9)), "values": {"temperature": 9.0}})
    wait_for(lambda: len(readings(device)) == 6, "the next message")
    stop(again)
    assert again.stats["accepted"] == 1


@on_broker
def test_delivers_messages_published_while_stopped_when_restarted_with_same_client_id(bridges, publish, device):
    first = bridges()
    stop(first)
    start = timezone.now() - timedelta(seconds=10)
    for i in range(3):
        publish(device.uid, {"ts": iso(start + timedelta(seconds=i)), "values": {"vibration": i / 100}})
    assert readings(device) == []
    bridges(client_id=first.client_id)
    wait_for(lambda: len(readings(device)) == 3, "the three messages kept by the broker")
    assert readings(device) == [("vibration", 0.0), ("vibration", 0.01), ("vibration", 0.02)]


@on_broker
@pytest.mark.parametrize("mqtt_url", ["own"], indirect=True)
def test_acknowledges_each_message_on_the_connection_it_came_on_when_broker_restarts(
    own_broker, bridges, publish, device
):
    bridge = bridges(flush_interval=60, batch_size=1000)  # holds everything until stop()
    start = timezone.now() - timedelta(seconds=30)
    for i in range(20):
        publish(device.uid, {"ts": iso(start + timedelta(seconds=i)), "values": {"temperature": float(i)}})
    wait_for(lambda: held(bridge, device.uid) == 20, "twenty held messages")
    own_broker.stop()
    wait_for(lambda: not bridge.ready.is_set(), "the bridge to notice")
    own_broker.start()
    # The session kept the 20 unacknowledged messages and sends them again on the new connection.
    wait_for(lambda: held(bridge, device.uid) == 40, "the redelivered copies", timeout=8)
    stop(bridge)
    assert readings(device) == [("temperature", float(i)) for i in range(20)]  # stored once (the key)
    assert bridge.stats["acked"] == 20  # the copies of the new connection; the old packet ids are void
    again = bridges(client_id=bridge.client_id)
    publish(device.uid, {"ts": iso(start + timedelta(seconds=29)), "values": {"temperature": 29.0}})
    wait_for(lambda: len(readings(device)) == 21, "the next message")
    stop(again)
    assert again.stats["accepted"] == 1  # the session holds nothing from before


def _blocked_on_latest_row(connection_id: int | None) -> bool:
    """Whether that connection is running the latest-value upsert (it cannot finish while the test
    holds the row). The processlist, not ``innodb_trx``: that one is a cache which is refreshed only
    after 0.1 s without a reader, so polling it every 50 ms never shows anything new."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT INFO FROM information_schema.processlist WHERE ID = %s", [connection_id])
        row = cursor.fetchone()
    return bool(row and row[0] and row[0].startswith("INSERT INTO telemetry_latest"))


def _kill(connection_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"KILL CONNECTION {int(connection_id)}")


@on_broker
def test_loses_and_duplicates_nothing_when_database_connection_is_killed(bridges, publish, device):
    if connection.vendor != "mysql":
        pytest.skip("kills the bridge's MariaDB connection")
    bridge = bridges(flush_interval=0.02, batch_size=50)
    total, start = 300, timezone.now() - timedelta(seconds=30)

    def send(i):
        publish(device.uid, {"ts": iso(start + timedelta(milliseconds=10 * i)), "values": {"power": float(i)}})

    def send_steadily():
        for i in range(1, total):
            send(i)
            time.sleep(0.004)  # a steady stream (the behaviour under test), not a wait for anything

    send(0)
    wait_for(lambda: readings(device), "the first reading")
    publisher = threading.Thread(target=send_steadily)
    # Kill the connection in the middle of a transaction: hold the latest-value row that every
    # batch upserts, wait until the bridge waits for it, then kill the bridge's connection.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT value FROM telemetry_latest WHERE device_id = %s FOR UPDATE", [device.pk])
        assert cursor.fetchall() == ((0.0,),)
        publisher.start()
        victim = bridge.db_connection_id
        wait_for(lambda: _blocked_on_latest_row(victim), "the bridge to wait for the row lock")
        _kill(victim)
    # And once more on the connection it opens next, while messages still flow.
    _kill(wait_for(lambda: bridge.db_connection_id not in (None, victim) and bridge.db_connection_id, "reconnect"))
    publisher.join(10)
    wait_for(lambda: len(readings(device)) == total, f"{total} readings", timeout=8)
    stop(bridge)
    assert readings(device) == [("power", float(i)) for i in range(total)]
    assert bridge.stats["db_errors"] >= 1
    assert bridge.stats["accepted"] == total  # each message committed exactly once
    assert dead_letters(device.uid) == []
    # Every message was acknowledged: the session redelivers none of them.
    again = bridges(client_id=bridge.client_id)
    publish(device.uid, {"ts": iso(start + timedelta(seconds=10)), "values": {"power": -1.0}})
    wait_for(lambda: len(readings(device)) == total + 1, "the next message")
    stop(again)
    assert again.stats["accepted"] == 1


def _sigterm_when(predicate, timeout: float = 8.0):
    """From another thread: wait for ``predicate`` (or the timeout), then SIGTERM this process."""

    def run():
        try:
            wait_for(predicate, "the command's work", timeout=timeout)
        except AssertionError:
            pass
        finally:
            connection.close()
            os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@on_broker
def test_command_stores_messages_and_exits_on_sigterm(mqtt_url, publish, device):
    client_id = unique("test-bridge")
    # Create the broker session first, so the message published now waits there for the command.
    session = MqttBridge(mqtt_url, client_id=client_id, session_expiry=300)
    session.thread = threading.Thread(target=session.run, daemon=True)
    session.thread.start()
    assert session.ready.wait(5)
    stop(session)
    publish(device.uid, {"values": {"temperature": 42.0}})
    try:
        signaller = _sigterm_when(lambda: readings(device))
        call_command("mqtt_bridge", "--client-id", client_id, "--flush-ms", "10", "--summary-seconds", "1")
        signaller.join(5)
    finally:
        _remove_session(mqtt_url, client_id)
    assert readings(device) == [("temperature", 42.0)]
    assert signal.getsignal(signal.SIGTERM) is not None  # handlers restored: the test run is unaffected


def test_command_refuses_to_start_naming_the_setting_when_mqtt_url_is_unset(settings):
    settings.MQTT_URL = None
    with pytest.raises(CommandError, match="MQTT_URL is not set"):
        call_command("mqtt_bridge")


def received(uid: str, payload: bytes, *, at=None) -> Received:
    return Received(f"factory/devices/{uid}/telemetry", payload, mid=0, qos=0, at=at or timezone.now())


@pytest.mark.django_db
def test_bridge_process_stores_valid_devices_and_dead_letters_in_one_call(line, settings):
    settings.TELEMETRY_MAX_BODY_BYTES = 1024
    a, b = make_device(line, uid="press-a"), make_device(line, uid="press-b")
    off = make_device(line, uid="press-off", enabled=False)
    at = timezone.now() - timedelta(seconds=1)
    big = b'{"values": {"x": ' + b"1" * 2000 + b"}}"
    batch = [
        received("press-a", json.dumps({"ts": iso(at), "values": {"temperature": 1.5}}).encode()),
        received("press-b", b'{"values": {"temperature": true}}'),
        received("nobody", b'{"values": {"temperature": 2}}'),
        received("press-off", b'{"values": {"temperature": 3}}'),
        received("press-b", big),
        received("press-b", json.dumps({"ts": iso(at), "values": {"temperature": 2.5}}).encode()),
    ]
    assert bridge_process(batch) == (2, 4)
    assert (readings(a), readings(b), readings(off)) == ([("temperature", 1.5)], [("temperature", 2.5)], [])
    reasons = dict(DeadLetter.objects.values_list("device_uid", "reason").order_by("id")[:3])
    assert reasons == {
        "press-b": "values.temperature: Must be a number, not bool.",
        "nobody": "topic: unknown device uid 'nobody'.",
        "press-off": "device: 'press-off' is disabled; its messages are refused.",
    }
    assert DeadLetter.objects.filter(device=b, reason=f"payload: {len(big)} bytes exceed the limit of 1024.").exists()
