"""Commands over MQTT on a Mosquitto configured as production runs it (per-device ACLs, the
platform's and the bridge's credentials): delivery on ``factory/devices/<uid>/commands``, results
on ``factory/devices/<uid>/commands/result`` through the bridge, and what one device cannot do to
another's commands."""

import json

import pytest
from django.db import OperationalError

from commands.models import Command
from commands.services import command_deliver, command_send
from devices.models import DeadLetter
from devices.services.tokens import token_issue
from devices.tests.factories import make_device, make_line
from devices.tests.test_mqtt_auth import auth_broker, bridge, clients, managed  # noqa: F401 (fixtures)
from tests.waiting import wait_until


@pytest.fixture
def broker(request):
    """The provisioned production-config broker (``managed``) and ``clients`` to make devices with."""
    return request.getfixturevalue("managed"), request.getfixturevalue("clients")


@pytest.fixture
def devices(broker, plant_a, catalogue, settings):
    # Delivery runs inline here (what is under test is the broker's side, not the queue).
    settings.CELERY_TASK_ALWAYS_EAGER = True
    line = make_line(plant_a, "Press line")
    made = []
    for uid in ("press-mq1", "press-mq2"):
        device = make_device(line, uid)
        made.append((device, token_issue(device=device, name="main")[1]))
    return made


def state_of(command) -> str:
    return Command.objects.values_list("state", flat=True).get(pk=command.pk)


def wait_state(command, state: str) -> None:
    # OperationalError: SQLite's shared in-memory test database is "locked" while the bridge commits.
    wait_until(lambda: state_of(command) == state, 10, f"command {command.pk} {state}", ignore=(OperationalError,))


@pytest.mark.usefixtures("bridge")
def test_a_subscribed_device_gets_the_command_and_answers_on_its_result_topic(broker, devices, operator):
    (mosquitto, make_client), ((press, token), _) = broker, devices
    device = make_client(mosquitto.device_url, press.uid, token)
    assert device.connect() and device.subscribe(f"factory/devices/{press.uid}/commands")

    command = command_send(device=press, name="set_speed", params={"rpm": 1500}, by=operator)
    wait_until(lambda: device.messages, 10, "the command on the device's topic")
    [(topic, payload)] = device.messages
    assert topic == f"factory/devices/{press.uid}/commands"
    body = json.loads(payload)
    assert body["id"] == command.pk and body["name"] == "set_speed" and body["params"] == {"rpm": 1500}
    assert body["type"] == "command" and body["expires_at"].endswith("Z")
    wait_state(command, "delivered")  # the broker had a subscriber

    reply = {"id": command.pk, "status": "succeeded", "result": {"rpm": 1500}}
    device.publish(f"factory/devices/{press.uid}/commands/result", json.dumps(reply).encode())
    wait_state(command, "succeeded")
    command.refresh_from_db()
    assert command.result == {"rpm": 1500}
    assert list(command.events.values_list("state", "via")) == [
        ("pending", "api"),
        ("delivered", "mqtt"),
        ("succeeded", "mqtt"),
    ]


def test_a_command_nobody_subscribed_to_stays_pending_for_the_poll(devices, operator):
    (press, _), _ = devices
    command = command_send(device=press, name="reset_counter", params={}, by=operator)
    assert command_deliver(command_id=command.pk) == "mqtt: no subscriber"
    assert state_of(command) == "pending"


@pytest.mark.usefixtures("bridge")
def test_a_device_cannot_answer_or_snoop_another_devices_commands(broker, devices, operator):
    (mosquitto, make_client), ((press, _), (other, other_token)) = broker, devices
    command = command_send(device=press, name="reset_counter", params={}, by=operator)
    intruder = make_client(mosquitto.device_url, other.uid, other_token)
    assert intruder.connect()
    assert not intruder.subscribe(f"factory/devices/{press.uid}/commands")
    forged = json.dumps({"id": command.pk, "status": "failed", "result": {"by": "intruder"}}).encode()
    intruder.publish(f"factory/devices/{press.uid}/commands/result", forged)  # refused by the broker's ACL
    intruder.publish(f"factory/devices/{other.uid}/commands/result", forged)  # its own topic: not its command
    wait_until(
        lambda: DeadLetter.objects.filter(device_uid=other.uid).exists(), 10, "the refused result kept as a dead letter"
    )
    letter = DeadLetter.objects.get(device_uid=other.uid)
    assert letter.reason == f"command result (404): This device has no command {command.pk}."
    assert letter.topic == f"factory/devices/{other.uid}/commands/result"
    assert state_of(command) == "pending"
    assert not DeadLetter.objects.filter(device_uid=press.uid).exists()  # the forged one never reached the bridge
