"""Store-and-forward end to end in the gateway: a Modbus machine changes while the uplink is down.

The uplink is a local receiver that is stopped (its port then refuses connections) and started
again on the same port. What the receiver gets afterwards is compared with what the disk queue
held: every reading, in order, with the timestamp it was read at, none lost, none twice.
"""

import json
import sqlite3
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from edge.gateway import Gateway
from edge.simulators import STATE_BITS, ModbusMachine
from edge.tests.conftest import Receiver, free_port, gateway_config, wait_until


def config_for(tmp_path, receiver: Receiver, machine: ModbusMachine, **sections):
    connectors = [{"name": "packer", "type": "modbus", "host": "127.0.0.1", "port": machine.port, "interval": 0.02}]
    tags = [
        {"connector": "packer", "metric": "count_total", "address": 2, "type": "uint32", "word_order": "little"},
        {"connector": "packer", "address": 1, "state": {"bits": STATE_BITS, "default": "idle"}},
    ]
    devices = [{"uid": "packer-01", "token": "packer-token", "tags": tags}]
    return gateway_config(tmp_path, receiver.url, connectors, devices, **sections)


def queued(config) -> list[dict]:
    """What the disk queue holds now, read from the file as another process would."""
    with sqlite3.connect(config.queue_path) as db:
        return [json.loads(body) for (body,) in db.execute("SELECT body FROM outbox ORDER BY id")]


async def count_to(machine: ModbusMachine, config, numbers) -> None:
    """Step the counter, each step waiting until the gateway queued it (no fixed sleeps)."""
    for number in numbers:
        machine.set("count_total", number)
        await wait_until(lambda n=number: any(m.get("values", {}).get("count_total") == n for m in queued(config)), 10)


@pytest_asyncio.fixture
async def machine():
    simulated = await ModbusMachine(free_port()).start()
    simulated.set("status", 1 << STATE_BITS["running"])
    yield simulated
    await simulated.stop()


@pytest.mark.asyncio
async def test_every_reading_arrives_in_order_after_an_outage_and_a_restart(tmp_path, receiver, machine):
    config = config_for(tmp_path, receiver, machine)
    gateway = await Gateway(config).start()
    try:
        await wait_until(lambda: receiver.of("packer-01"), 10, "the first reading")
        assert receiver.of("packer-01")[0]["state"] == "running"
        await wait_until(lambda: gateway.store.depth == 0, 10, "an empty queue")
        await receiver.stop()  # the uplink is down: its port refuses connections

        await count_to(machine, config, range(1, 11))
        await gateway.stop()  # the gateway restarts during the outage
        assert len(queued(config)) == 10
        gateway = await Gateway(config).start()
        # The restarted gateway reports the machine's current values afresh (count 10 and the state).
        await wait_until(lambda: len(queued(config)) == 11, 10, "the report after the restart")
        await count_to(machine, config, range(11, 21))
        assert gateway.health.last_error == "uplink"

        before = queued(config)
        restored_at = datetime.now(UTC)
        await receiver.start()
        await wait_until(lambda: gateway.store.depth == 0, 20, "the queue to drain")
    finally:
        await gateway.stop()
    received = receiver.of("packer-01")[1:]
    assert received == before  # in order, same content and timestamps, nothing lost, nothing twice
    assert len(received) == 21  # counts 1-20 and the report after the restart
    assert received[10]["state"] == "running"
    counts = [m["values"]["count_total"] for m in received if "values" in m]
    assert counts == [*range(1, 11), 10, *range(11, 21)]
    timestamps = [datetime.fromisoformat(m["ts"]) for m in received]
    assert timestamps == sorted(timestamps) and len(set(timestamps)) == len(timestamps)
    assert all(ts < restored_at for ts in timestamps)  # read during the outage, not stamped when sent


@pytest.mark.asyncio
async def test_a_full_queue_drops_the_oldest_and_reports_how_many(tmp_path, receiver, machine):
    config = config_for(tmp_path, receiver, machine, queue={"max_rows": 5})
    gateway = await Gateway(config).start()
    try:
        await wait_until(lambda: receiver.of("packer-01") and gateway.store.depth == 0, 10, "the first reading")
        await receiver.stop()
        await count_to(machine, config, range(1, 9))  # 8 readings into 5 places: 1, 2 and 3 are dropped
        assert [m["values"]["count_total"] for m in queued(config)] == [4, 5, 6, 7, 8]
        gateway.health_message()  # makes room by dropping 4, and reports the 3 dropped so far
        await receiver.start()
        await wait_until(lambda: gateway.store.depth == 0, 20, "the queue to drain")
        assert gateway.store.counters()["dropped_full"] == 4
    finally:
        await gateway.stop()
    counts = [m["values"]["count_total"] for m in receiver.of("packer-01")]
    assert counts == [0, 5, 6, 7, 8]
    (health,) = receiver.of("gateway-01")
    assert health["values"]["queue_dropped_full"] == 3
    assert health["values"]["queue_depth"] == 5
    assert health["values"]["connector_packer_up"] == 1
    assert health["values"]["last_error_code"] == 6  # queue_full
