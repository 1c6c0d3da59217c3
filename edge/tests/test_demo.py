"""The demo against a real platform seeded like `make run`: it provisions its machines through the
management API, and the simulated machines' values arrive as their readings."""

import asyncio
import json

import httpx
import pytest
import yaml

from edge.config import load
from edge.demo import GATEWAY, MACHINES, demo_config, provision
from edge.gateway import Gateway
from edge.simulators import STATE_BITS, STATE_CODES, ModbusMachine, OpcUaMachine
from edge.tests.conftest import all_sent, free_port, wait_until
from tests.servers import seeded_stack

pytestmark = pytest.mark.timeout(240)


def test_the_demo_provisions_its_machines_once_and_their_values_arrive(tmp_path):
    with seeded_stack(tmp_path, 'print("{}")', prepare=[("seed_demo",)]) as (server, _):
        password = json.loads((tmp_path / "var" / "demo-credentials.json").read_text())["admin"]
        workdir = tmp_path / "edge-demo"
        workdir.mkdir()
        tokens = provision(server.url, "admin", password, "Demo Plant", workdir)
        assert set(tokens) == {*MACHINES, GATEWAY}
        assert all(path.stat().st_mode & 0o777 == 0o600 for path in tokens.values())
        first = {uid: path.read_text() for uid, path in tokens.items()}
        assert provision(server.url, "admin", password, "Demo Plant", workdir) == tokens  # run again: reused
        assert {uid: path.read_text() for uid, path in tokens.items()} == first

        api = httpx.Client(base_url=server.url, timeout=10)
        access = api.post("/api/v1/auth/token/", json={"username": "admin", "password": password}).json()["access"]
        api.headers["Authorization"] = f"Bearer {access}"
        found = api.get("/api/v1/devices/", params={"search": "edge-"}).json()["results"]
        assert sorted(device["uid"] for device in found) == sorted(MACHINES)
        ids = {device["uid"]: device["id"] for device in found}
        asyncio.run(run_demo_gateway(tmp_path, server.url, tokens))
        press = api.get(f"/api/v1/devices/{ids['edge-press-opcua']}/").json()
        packer = api.get(f"/api/v1/devices/{ids['edge-packer-modbus']}/").json()
        assert (press["state"], packer["state"]) == ("running", "setup")
        counts = api.get(
            f"/api/v1/devices/{ids['edge-packer-modbus']}/telemetry/", params={"metric": "count_total", "bucket": "raw"}
        )
        assert [point["value"] for point in counts.json()["points"]] == [321]


async def run_demo_gateway(tmp_path, url, tokens) -> None:
    opcua = await OpcUaMachine(free_port()).start()
    modbus = await ModbusMachine(free_port()).start()
    await opcua.set("State", STATE_CODES["running"])
    modbus.set("status", 1 << STATE_BITS["setup"])
    modbus.set("count_total", 321)
    config_path = tmp_path / "edge.yaml"
    config = demo_config(platform=url, opcua=opcua, modbus=modbus, tokens=tokens, queue=tmp_path / "q.sqlite3")
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    gateway = await Gateway(load(config_path)).start()
    try:
        await wait_until(lambda: all_sent(gateway), 60, "the demo's readings")
    finally:
        await gateway.stop()
        await modbus.stop()
        await opcua.stop()
