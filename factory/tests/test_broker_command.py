"""``make broker`` (``manage.py broker``): Mosquitto with the production configuration, whose
credentials the platform finds when ``MQTT_URL`` names it, as ``MQTT_URL=... make run`` uses it."""

import os
import subprocess
import sys

import pytest

from conftest import REQUIRE_SERVICES
from tests.mosquitto import connects, mosquitto_available
from tests.servers import BASE_DIR, free_port, port_open, run_python
from tests.waiting import wait_until

CHECK = """
import json
from django.conf import settings
from devices.services import broker
with broker._control() as control:
    listed = control.send([{"command": "listClients"}])
print(json.dumps({"url": settings.MQTT_URL, "device_url": settings.MQTT_DEVICE_URL,
                  "managed": broker.broker_managed(), "clients": listed[0]["data"]["clients"]}))
"""


@pytest.fixture
def local_broker(tmp_path):
    if not mosquitto_available():
        (pytest.fail if REQUIRE_SERVICES else pytest.skip)("mosquitto with its dynamic-security plugin is missing")
    port = free_port()
    env = {**os.environ, "VAR_DIR": str(tmp_path), "MQTT_URL": f"mqtt://127.0.0.1:{port}"}
    for name in ("MQTT_PLATFORM_PASSWORD", "MQTT_BRIDGE_PASSWORD", "MQTT_DEVICE_URL"):
        env.pop(name, None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "broker", "--port", str(port)],
        cwd=BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_until(lambda: port_open(port) and port_open(port + 1), 15, "make broker's listeners")
        yield port, env, tmp_path
    finally:
        process.terminate()
        process.wait(10)


def test_make_broker_refuses_anonymous_clients_and_the_platform_finds_its_credentials(local_broker):
    port, env, var = local_broker
    assert not connects(f"mqtt://127.0.0.1:{port}")
    assert not connects(f"mqtt://127.0.0.1:{port + 1}")
    platform_password = (var / "mosquitto" / "platform_password").read_text().strip()
    assert connects(f"mqtt://127.0.0.1:{port + 1}", "platform@factory", platform_password)

    seen = run_python(env, CHECK)
    assert seen["url"] == f"mqtt://127.0.0.1:{port + 1}"  # the platform uses its own listener
    assert seen["device_url"] == f"mqtt://127.0.0.1:{port}"
    assert seen["managed"] is True
    assert seen["clients"] == ["platform@factory"]
    assert oct((var / "mosquitto" / "platform_password").stat().st_mode & 0o777) == "0o600"
