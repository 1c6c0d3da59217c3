"""Commands end to end on one server stack: ``manage.py serve`` (Daphne with the MQTT bridge
inside) on its own database, a Mosquitto configured as production runs it, real device clients.

- Over the device WebSocket: the command arrives as ``{"command": ...}`` (and is then
  ``delivered``), the device answers with a ``{"command_result": ...}`` frame; a device cannot
  answer another device's command. The operator sends through the API with a JWT.
- In Chromium: an operator sends a command from the machine page; a simulated device (paho, with
  its own uid and token on the broker's device listener) answers on its result topic; the page
  shows ``succeeded`` with the result, live.
"""

import json
import uuid

import httpx
import pytest
from websockets.sync.client import connect

from devices.tests.test_mqtt_auth import Client, started_auth_broker
from tests.browser import log_in, require_chromium, wait_live
from tests.mosquitto import BRIDGE_USERNAME, PLATFORM_USERNAME
from tests.servers import seeded_stack
from tests.waiting import wait_until

playwright_sync = require_chromium()
expect = playwright_sync.expect

SEED = """
import contextlib, io, json
from commands.tests.factories import make_catalogue
from tests.e2e_seed import seed
with contextlib.redirect_stdout(io.StringIO()):
    data = seed(devices=2, sensor=False)
make_catalogue()
from devices.services.broker import broker_reconcile
broker_reconcile()  # the bridge's client and role (the devices' were made with their tokens)
print(json.dumps(data))
"""


@pytest.fixture(scope="module")
def mosquitto(tmp_path_factory):
    with started_auth_broker(tmp_path_factory, "commands-mosquitto") as broker:
        yield broker


@pytest.fixture(scope="module")
def stack(tmp_path_factory, mosquitto):
    env = {
        # The embedded default's in-memory channel layer: serve then runs the MQTT bridge inside.
        "REDIS_URL": None,
        "MQTT_URL": mosquitto.url,
        "MQTT_DEVICE_URL": mosquitto.device_url,
        "MQTT_PLATFORM_USERNAME": PLATFORM_USERNAME,
        "MQTT_PLATFORM_PASSWORD": mosquitto.platform_password,
        "MQTT_BRIDGE_USERNAME": BRIDGE_USERNAME,
        "MQTT_BRIDGE_PASSWORD": mosquitto.bridge_password,
        "MQTT_BRIDGE_CLIENT_ID": f"commands-e2e-{uuid.uuid4().hex[:8]}",
    }
    workdir = tmp_path_factory.mktemp("commands-e2e")
    with seeded_stack(workdir, SEED, env=env, embedded=True) as (server, seeded):
        token = httpx.post(
            f"{server.url}/api/v1/auth/token/", json={"username": "operator", "password": seeded["password"]}
        ).json()["access"]
        yield server, seeded, {"Authorization": f"Bearer {token}"}


def device_socket(server, token: str):
    url = server.url.replace("http://", "ws://") + "/ws/devices/"
    return connect(url, additional_headers={"Authorization": f"Device {token}"}, open_timeout=5)


def command_state(server, auth, command_id: int) -> dict:
    return httpx.get(f"{server.url}/api/v1/commands/{command_id}/", headers=auth).json()


def test_the_command_reaches_the_device_socket_and_the_device_answers_on_it(stack):
    server, seeded, auth = stack
    press = seeded["devices"]["press-001"]
    with device_socket(server, press["token"]) as device:
        response = httpx.post(
            f"{server.url}/api/v1/devices/{press['id']}/commands/",
            json={"name": "set_speed", "params": {"rpm": 750, "ramp": True}, "timeout": 120},
            headers=auth,
        )
        assert response.status_code == 201, response.text
        sent = response.json()
        frame = json.loads(device.recv(timeout=10))
        assert frame["command"]["id"] == sent["id"]
        assert frame["command"]["name"] == "set_speed" and frame["command"]["params"] == {"rpm": 750, "ramp": True}
        wait_until(lambda: command_state(server, auth, sent["id"])["state"] == "delivered", 10, "delivered")

        device.send(json.dumps({"command_result": {"id": sent["id"], "status": "succeeded", "result": {"rpm": 750}}}))
        assert json.loads(device.recv(timeout=10)) == {"command_result": {"id": sent["id"], "state": "succeeded"}}
        # Telemetry still flows on the same socket.
        device.send(json.dumps({"values": {"temperature": 60.5}}))
        assert json.loads(device.recv(timeout=10)) == {"accepted": 1}

    detail = command_state(server, auth, sent["id"])
    assert detail["state"] == "succeeded" and detail["result"] == {"rpm": 750}
    assert [(e["state"], e["via"]) for e in detail["events"]] == [
        ("pending", "api"),
        ("delivered", "websocket"),
        ("succeeded", "websocket"),
    ]


def test_a_device_cannot_answer_another_devices_command_on_its_socket(stack):
    server, seeded, auth = stack
    press, other = seeded["devices"]["press-001"], seeded["devices"]["press-002"]
    response = httpx.post(
        f"{server.url}/api/v1/devices/{press['id']}/commands/", json={"name": "reset_counter"}, headers=auth
    )
    assert response.status_code == 201, response.text
    command_id = response.json()["id"]
    with device_socket(server, other["token"]) as intruder:
        intruder.send(json.dumps({"command_result": {"id": command_id, "status": "failed"}}))
        reply = json.loads(intruder.recv(timeout=10))
    assert reply == {
        "command_result": {"id": command_id, "status": 404, "error": f"This device has no command {command_id}."}
    }
    assert command_state(server, auth, command_id)["state"] == "pending"


def test_operator_sends_from_the_machine_page_and_sees_the_devices_mqtt_result(stack, mosquitto, tab):
    server, seeded, _ = stack
    press = seeded["devices"]["press-002"]
    device = Client(mosquitto.device_url, "press-002", press["token"])
    assert device.connect(), "the device's own uid and token were refused by the broker"
    try:
        assert device.subscribe("factory/devices/press-002/commands")

        # The simulated device: sets the speed it is told and reports it back on its result topic;
        # other commands it receives and leaves unanswered.
        def answer(client, userdata, message):
            command = json.loads(message.payload)
            if command["name"] != "set_speed":
                return
            result = {"rpm": command["params"]["rpm"], "ramped": command["params"].get("ramp", False)}
            reply = {"id": command["id"], "status": "succeeded", "result": result}
            client.publish("factory/devices/press-002/commands/result", json.dumps(reply), qos=1)

        device.client.on_message = answer

        log_in(tab, server, "operator", seeded["password"])
        tab.goto(f"{server.url}/devices/{press['id']}/")
        wait_live(tab)
        card = tab.locator("#commands-card")
        expect(card.get_by_label("Command")).to_have_value("reset_counter")
        # Delivered (the broker had the device as subscriber) before the POST even answers: the
        # page must not fall back to the answer's older "pending".
        card.get_by_role("button", name="Send").click()
        expect(card.locator("#command-status")).to_contain_text("waiting for the device")
        first = card.locator("#command-history li").first
        expect(first.locator('[data-role="name"]')).to_have_text("reset_counter")
        expect(first.locator('[data-role="state"]')).to_have_text("delivered")

        card.get_by_label("Command").select_option("set_speed")
        card.get_by_label("Speed (rpm) *").fill("1250")
        card.get_by_label("ramp").check()
        card.get_by_role("button", name="Send").click()
        expect(card.locator("#command-status")).to_contain_text("waiting for the device")
        row = card.locator("#command-history li").first
        expect(row.locator('[data-role="state"]')).to_have_text("succeeded")
        expect(row.locator('[data-role="result"]')).to_have_text('{"rpm":1250,"ramped":true}')
        expect(row.locator('[data-role="name"]')).to_have_text("set_speed")
    finally:
        device.close()
