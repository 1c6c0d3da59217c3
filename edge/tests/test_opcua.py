"""The OPC UA connector against a real asyncua server: subscriptions, polling, login, reconnects."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from edge.config import Connector, Tag
from edge.health import Health
from edge.opcua import OpcUaConnector
from edge.simulators import OpcUaMachine
from edge.tests.conftest import free_port, wait_until


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
        task.cancel()
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
        task.cancel()
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
        good.cancel()
        bad.cancel()
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
        task.cancel()
        await machine.stop()
