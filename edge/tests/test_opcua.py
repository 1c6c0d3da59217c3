"""The OPC UA connector against a real asyncua server: subscriptions, polling, login, reconnects."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from cryptography.x509.oid import ExtendedKeyUsageOID

from edge.config import Connector, Security, Tag
from edge.health import Health
from edge.opcua import OpcUaConnector
from edge.simulators import OpcUaMachine
from edge.tests.conftest import cancel, free_port, wait_until

SERVER_AUTH, CLIENT_AUTH = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH


def tags(machine: OpcUaMachine) -> list[Tag]:
    return [
        Tag("press-01", "press", metric="temperature", node=machine.node_id("Temperature")),
        Tag("press-01", "press", node=machine.node_id("State"), states=((1, "running"), (2, "idle"))),
        Tag("press-01", "press", metric="count_total", node=machine.node_id("CountTotal")),
    ]


def connector_for(machine, readings, health, **options) -> OpcUaConnector:
    config = Connector(name="press", type="opcua", url=machine.url, interval=0.05, **options)
    return OpcUaConnector(config, tags(machine), readings.extend, health)


def latest(readings) -> dict:
    return {reading.tag.metric or "state": reading.raw for reading in readings}


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["subscription", "poll"])
async def test_reads_the_machines_values_and_their_changes(mode):
    machine = await OpcUaMachine(free_port()).start()
    readings, health = [], Health()
    task = asyncio.create_task(connector_for(machine, readings, health, mode=mode).run())
    try:
        await wait_until(lambda: latest(readings) == {"temperature": 20.0, "state": 2, "count_total": 0}, 15, "values")
        assert health.connectors == {"press": True}
        await machine.set("CountTotal", 41)
        await machine.set("State", 1)
        await wait_until(
            lambda: latest(readings) == {"temperature": 20.0, "state": 1, "count_total": 41}, 10, "changes"
        )
    finally:
        await cancel(task)
        await machine.stop()


@pytest.mark.asyncio
async def test_uses_the_servers_source_timestamps_when_configured():
    machine = await OpcUaMachine(free_port()).start()
    readings, health = [], Health()
    started = datetime.now(UTC)
    task = asyncio.create_task(connector_for(machine, readings, health, timestamps="source").run())
    try:
        await wait_until(lambda: len(readings) >= 3, 15, "values")
        # The values were written when the server started, before the connector connected.
        assert all(reading.ts < started + timedelta(seconds=1) and reading.ts.tzinfo for reading in readings[:3])
        await machine.set("CountTotal", 1)
        await wait_until(lambda: readings[-1].raw == 1, 10, "a change")
        assert readings[-1].ts > started
    finally:
        await cancel(task)
        await machine.stop()


@pytest.mark.asyncio
async def test_logs_in_with_user_and_password_and_reports_a_refused_login():
    machine = await OpcUaMachine(free_port(), users={"edge": "s3cret"}).start()
    readings, health = [], Health()
    good = asyncio.create_task(connector_for(machine, readings, health, username="edge", password="s3cret").run())
    refused_health = Health()
    bad = asyncio.create_task(connector_for(machine, [], refused_health, username="edge", password="wrong").run())
    try:
        await wait_until(lambda: len(readings) >= 3, 15, "values with the right password")
        await wait_until(lambda: refused_health.last_error == "plc", 15, "the refused login")
        assert refused_health.connectors["press"] is False
    finally:
        await cancel(good, bad)
        await machine.stop()


@pytest.mark.asyncio
async def test_reconnects_and_reads_again_after_the_server_restarts():
    port = free_port()
    machine = await OpcUaMachine(port).start()
    readings, health = [], Health()
    task = asyncio.create_task(connector_for(machine, readings, health).run())
    try:
        await wait_until(lambda: health.connectors.get("press"), 15, "the connection")
        await machine.stop()
        await wait_until(lambda: health.connectors["press"] is False, 15, "the connector to notice")
        machine = await OpcUaMachine(port).start()
        await machine.set("CountTotal", 7)
        await wait_until(lambda: readings[-1].raw == 7 and health.connectors["press"], 30, "values after reconnecting")
    finally:
        await cancel(task)
        await machine.stop()


async def certificate(directory, name: str, app_uri: str, usage) -> tuple:
    """A self-signed certificate (DER) and key (PEM) made with asyncua's helper."""
    cert, key = directory / f"{name}.der", directory / f"{name}.pem"
    await setup_self_signed_certificate(key, cert, app_uri, "127.0.0.1", [usage], {"commonName": name})
    return cert, key


@pytest.mark.asyncio
async def test_reads_over_a_signed_and_encrypted_channel_and_a_plain_client_is_refused(tmp_path):
    server_cert, server_key = await certificate(tmp_path, "plc", "urn:freeopcua:python:server", SERVER_AUTH)
    edge_cert, edge_key = await certificate(tmp_path, "edge", "urn:freeopcua:client", CLIENT_AUTH)
    machine = await OpcUaMachine(free_port(), certificate=(server_cert, server_key)).start()
    security = Security("Basic256Sha256", "SignAndEncrypt", edge_cert, edge_key, server_cert)
    readings, health = [], Health()
    secured = asyncio.create_task(connector_for(machine, readings, health, security=security).run())
    plain_health = Health()
    plain = asyncio.create_task(connector_for(machine, [], plain_health).run())
    try:
        await wait_until(lambda: len(readings) >= 3, 20, "values over the secure channel")
        await wait_until(lambda: plain_health.last_error == "plc", 20, "the plain client to be refused")
        assert "No matching endpoints" in plain_health.last_error_text
    finally:
        await cancel(secured, plain)
        await machine.stop()
