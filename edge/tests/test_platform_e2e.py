"""End to end with the real platform: a simulated OPC UA press and a Modbus packer, read by the
gateway, appear as readings with the right metric, scale, state and counters; a short outage of
the platform (Daphne stopped and started again on its port) loses nothing.

The platform runs in a Daphne process on a scratch database of this leg (tests/servers.py).
"""

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from edge.gateway import Gateway
from edge.simulators import STATE_BITS, STATE_CODES, ModbusMachine, OpcUaMachine
from edge.tests.conftest import all_sent, free_port, gateway_config, wait_until
from tests.servers import seeded_stack

pytestmark = pytest.mark.timeout(240)
SEED = "from tests.e2e_seed import seed; seed(devices=2, sensor=False)"


def devices_config(seeded: dict, opcua: OpcUaMachine, modbus: ModbusMachine) -> tuple[list, list]:
    press, packer = seeded["devices"]["press-001"], seeded["devices"]["press-002"]
    connectors = [
        {"name": "press", "type": "opcua", "url": opcua.url, "interval": 0.1},
        {"name": "packer", "type": "modbus", "host": "127.0.0.1", "port": modbus.port, "interval": 0.05},
    ]
    state_map = {code: state for state, code in STATE_CODES.items()}
    devices = [
        {"uid": "press-001", "token": press["token"], "tags": [
            {"connector": "press", "metric": "temperature", "node": opcua.node_id("Temperature")},
            {"connector": "press", "state": {"map": state_map}, "node": opcua.node_id("State")},
            {"connector": "press", "metric": "count_total", "node": opcua.node_id("CountTotal")},
            {"connector": "press", "metric": "count_good", "node": opcua.node_id("CountGood")},
        ]},
        {"uid": "press-002", "token": packer["token"], "tags": [
            {"connector": "packer", "metric": "temperature", "address": 0, "type": "int16", "scale": 0.1},
            {"connector": "packer", "address": 1, "state": {"bits": STATE_BITS, "default": "idle"}},
            {"connector": "packer", "metric": "count_total", "address": 2, "type": "uint32", "word_order": "little"},
            {"connector": "packer", "metric": "count_good", "address": 4, "type": "uint32", "word_order": "little"},
        ]},
    ]  # fmt: skip
    return connectors, devices


class Platform:
    """The management API as the operator of plant A sees it."""

    def __init__(self, url: str, password: str):
        self.api = httpx.Client(base_url=url, timeout=10)
        token = self.api.post("/api/v1/auth/token/", json={"username": "operator", "password": password})
        assert token.status_code == 200, token.text
        self.api.headers["Authorization"] = f"Bearer {token.json()['access']}"

    def points(self, device_id: int, metric: str) -> list[tuple[datetime, float]]:
        response = self.api.get(f"/api/v1/devices/{device_id}/telemetry/", params={"metric": metric, "bucket": "raw"})
        if response.status_code == 404:  # no reading of this metric yet
            return []
        assert response.status_code == 200, response.text
        return [(datetime.fromisoformat(p["ts"]), p["value"]) for p in response.json()["points"]]

    def state(self, device_id: int) -> str | None:
        return self.api.get(f"/api/v1/devices/{device_id}/").json()["state"]


def test_opc_ua_and_modbus_values_become_readings_and_survive_an_outage(tmp_path):
    with seeded_stack(tmp_path, SEED) as (server, seeded):
        platform = Platform(server.url, seeded["password"])
        asyncio.run(scenario(tmp_path, server, seeded, platform))


async def scenario(tmp_path, server, seeded, platform: Platform) -> None:
    press_id, packer_id = seeded["devices"]["press-001"]["id"], seeded["devices"]["press-002"]["id"]
    opcua = await OpcUaMachine(free_port()).start()
    modbus = await ModbusMachine(free_port()).start()
    for name, value in {
        "Temperature": 71.5,
        "State": STATE_CODES["running"],
        "CountTotal": 100,
        "CountGood": 98,
    }.items():
        await opcua.set(name, value)
    for name, value in {
        "temperature": 655,
        "status": 1 << STATE_BITS["down"],
        "count_total": 2000,
        "count_good": 1990,
    }.items():
        modbus.set(name, value)
    connectors, devices = devices_config(seeded, opcua, modbus)
    config = gateway_config(tmp_path, server.url, connectors, devices, uplink={"retry_max": 0.5})
    gateway = await Gateway(config).start()
    try:
        await wait_until(lambda: all_sent(gateway), 60, "the first readings")
        assert [v for _, v in platform.points(press_id, "temperature")] == [71.5]
        assert [v for _, v in platform.points(press_id, "count_total")] == [100]
        assert [v for _, v in platform.points(press_id, "count_good")] == [98]
        assert platform.state(press_id) == "running"
        assert [v for _, v in platform.points(packer_id, "temperature")] == [pytest.approx(65.5)]  # 655 x 0.1
        assert [v for _, v in platform.points(packer_id, "count_total")] == [2000]
        assert platform.state(packer_id) == "down"

        server.stop()  # the platform is down for a moment while the packer counts on
        for count in range(2001, 2006):
            modbus.set("count_total", count)
            await wait_until(
                lambda n=count: gateway.reporter.last["press-002/count_total"][0] == n, 10, f"count {count}"
            )
        assert gateway.store.depth == 5
        server.start(timeout=30)
        await wait_until(lambda: gateway.store.depth == 0, 60, "the queue to drain")
    finally:
        await gateway.stop()
        await modbus.stop()
        await opcua.stop()
    counts = platform.points(packer_id, "count_total")
    assert [v for _, v in counts] == [2000, 2001, 2002, 2003, 2004, 2005]
    assert all(ts < datetime.now(UTC) for ts, _ in counts)
    assert [ts for ts, _ in counts] == sorted({ts for ts, _ in counts})
