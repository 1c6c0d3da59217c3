"""MQTT over TLS on the device listener, with a locally generated CA (issue 14 item 3): a client
that trusts the CA connects, one without it or dialling a host name the certificate does not name
is refused before it sends its credentials; the simulator verifies the broker the same way."""

import asyncio
import threading
import uuid

import pytest
from django.db import OperationalError

from devices.models import TelemetryReading
from devices.services import broker
from devices.services.mqtt_bridge import MqttBridge
from devices.services.tokens import token_issue
from devices.tests.factories import make_device
from devices.tests.test_mqtt_auth import started_auth_broker
from simulator.transports import OK, MqttTransport
from tests.mosquitto import connects
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    with started_auth_broker(tmp_path_factory, "mosquitto-tls", tls=True) as server:
        yield server


@pytest.fixture
def device(tls_broker, settings, transactional_db):
    tls_broker.settings(settings)
    broker.broker_reconcile()
    machine = make_device(uid=f"tls-{uuid.uuid4().hex[:6]}")
    return machine, token_issue(device=machine, name="main")[1]


def test_only_a_client_that_verifies_the_broker_certificate_connects(tls_broker, device):
    machine, token = device
    ca = tls_broker.certs["ca"]
    assert connects(tls_broker.tls_url, machine.uid, token, ca_file=ca)
    assert not connects(tls_broker.tls_url, machine.uid, token)  # the system's CAs do not know ours
    wrong_host = tls_broker.tls_url.replace("localhost", "127.0.0.1")  # the certificate names localhost only
    assert not connects(wrong_host, machine.uid, token, ca_file=ca)
    assert not connects(tls_broker.tls_url, ca_file=ca)  # TLS is no way around the credentials


def test_the_simulator_sends_over_tls_with_the_ca_and_the_bridge_stores_it(tls_broker, device):
    machine, token = device
    bridge = MqttBridge(tls_broker.url, client_id=f"factory-mqtt-bridge-{uuid.uuid4().hex[:6]}", session_expiry=60)
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    assert bridge.ready.wait(5)

    async def send(ca_file):
        transport = MqttTransport(tls_broker.tls_url, ca_file=ca_file)
        await transport.open({machine.uid: token})
        try:
            return await transport.send(machine.uid, token, [{"values": {"temperature": 21.5}}])
        finally:
            await transport.close()

    try:
        assert asyncio.run(send(None)).outcome != OK  # it refuses a broker it cannot verify
        assert asyncio.run(send(str(tls_broker.certs["ca"]))).outcome == OK
        wait_until(
            lambda: TelemetryReading.objects.filter(device=machine).count() == 1,
            5,
            "the reading",
            ignore=(OperationalError,),  # SQLite's shared in-memory database while the bridge commits
        )
    finally:
        bridge.stop()
        thread.join(10)


def test_the_bridge_connects_over_tls_only_with_the_ca(tls_broker, settings, transactional_db):
    tls_broker.settings(settings)
    broker.broker_reconcile()
    for ca_file, subscribes in ((None, False), (str(tls_broker.certs["ca"]), True)):
        settings.MQTT_CA_FILE = ca_file
        bridge = MqttBridge(tls_broker.tls_url, client_id=f"factory-mqtt-bridge-{uuid.uuid4().hex[:6]}")
        thread = threading.Thread(target=bridge.run, daemon=True)
        thread.start()
        try:
            assert bridge.ready.wait(5 if subscribes else 2) is subscribes
        finally:
            bridge.stop()
            thread.join(10)
