"""The gateway as a whole with a Modbus machine and a local receiver: heartbeats, health messages,
and values that fit no mapping."""

import asyncio

import pytest
import pytest_asyncio

from edge.gateway import Gateway
from edge.simulators import STATE_BITS, ModbusMachine
from edge.tests.conftest import free_port, gateway_config, wait_until


@pytest_asyncio.fixture
async def machine():
    simulated = await ModbusMachine(free_port()).start()
    yield simulated
    await simulated.stop()


def config_for(tmp_path, receiver, machine, tags, **sections):
    connectors = [{"name": "packer", "type": "modbus", "host": "127.0.0.1", "port": machine.port, "interval": 0.02}]
    return gateway_config(
        tmp_path, receiver.url, connectors, [{"uid": "packer-01", "token": "packer-token", "tags": tags}], **sections
    )


@pytest.mark.asyncio
async def test_repeats_an_unchanged_value_every_max_interval(tmp_path, receiver, machine):
    machine.set("temperature", 215)
    tags = [{"connector": "packer", "metric": "temperature", "address": 0, "type": "int16", "scale": 0.1,
             "max_interval": 0.2}]  # fmt: skip
    gateway = await Gateway(config_for(tmp_path, receiver, machine, tags)).start()
    try:
        await wait_until(lambda: len(receiver.of("packer-01")) >= 3, 10, "two heartbeats after the first report")
    finally:
        await gateway.stop()
    assert {m["values"]["temperature"] for m in receiver.of("packer-01")} == {21.5}
    assert len({m["ts"] for m in receiver.of("packer-01")}) == len(receiver.of("packer-01"))


@pytest.mark.asyncio
async def test_sends_its_health_as_the_gateway_devices_telemetry(tmp_path, receiver, machine):
    tags = [{"connector": "packer", "metric": "count_total", "address": 2, "type": "uint32"}]
    gateway = await Gateway(config_for(tmp_path, receiver, machine, tags, health={"interval": 0.1})).start()
    try:
        await wait_until(lambda: receiver.of("gateway-01") and receiver.of("packer-01"), 10, "a health message")
        await machine.stop()  # the PLC goes away: the next health messages say so
        await wait_until(lambda: receiver.of("gateway-01")[-1]["values"]["connector_packer_up"] == 0, 10, "PLC down")
    finally:
        await gateway.stop()
    health = receiver.of("gateway-01")[-1]["values"]
    assert health["last_error_code"] == 1 and health["errors_total"] >= 1  # a PLC link error
    assert set(health) == {"queue_depth", "queue_dropped_full", "queue_dropped_expired", "dead_letters",
                           "errors_total", "last_error_code", "connector_packer_up"}  # fmt: skip


@pytest.mark.asyncio
async def test_skips_a_state_that_fits_no_mapping_and_keeps_sending_the_rest(tmp_path, receiver, machine):
    machine.set("status", 1 << 7)  # a bit the mapping does not know, and no default
    machine.set("count_total", 12)
    tags = [
        {"connector": "packer", "address": 1, "state": {"bits": STATE_BITS}},
        {"connector": "packer", "metric": "count_total", "address": 2, "type": "uint32", "word_order": "little"},
    ]
    gateway = await Gateway(config_for(tmp_path, receiver, machine, tags)).start()
    try:
        await wait_until(lambda: receiver.of("packer-01"), 10, "the counter")
        machine.set("status", 1 << STATE_BITS["running"])
        await wait_until(lambda: any("state" in m for m in receiver.of("packer-01")), 10, "the state once it maps")
    finally:
        await gateway.stop()
    assert receiver.of("packer-01")[0] == {"ts": receiver.of("packer-01")[0]["ts"], "values": {"count_total": 12}}
    assert [m["state"] for m in receiver.of("packer-01") if "state" in m] == ["running"]
    assert gateway.health.errors_total == 1 and "maps to no state" in gateway.health.last_error_text


@pytest.mark.asyncio
async def test_stop_ends_a_task_that_lost_a_cancellation(tmp_path, receiver, machine):
    """On Python 3.11 ``asyncio.wait_for`` (inside pymodbus and asyncua) can swallow a cancellation;
    such a task must not keep ``stop()`` (and so a SIGTERM) waiting forever."""
    tags = [{"connector": "packer", "metric": "count_total", "address": 2, "type": "uint32"}]
    gateway = await Gateway(config_for(tmp_path, receiver, machine, tags)).start()
    swallowed = []

    async def swallows_one_cancellation():
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            swallowed.append(True)  # as wait_for does when its result arrives with the cancellation
        await asyncio.sleep(3600)

    stubborn = asyncio.create_task(swallows_one_cancellation())
    gateway.tasks.append(stubborn)
    await asyncio.sleep(0)
    stopping = asyncio.create_task(gateway.stop())
    done, _ = await asyncio.wait({stopping}, timeout=5)
    if not done:  # clean up before failing
        stubborn.cancel()
        await stopping
    assert done, "stop() waited on a task that swallowed its cancellation"
    assert swallowed == [True] and stubborn.cancelled()
