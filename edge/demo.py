"""``python -m edge demo``: a simulated OPC UA press and a Modbus packer behind a real gateway,
sending to a running platform (``make run``), so real protocol data shows on the dashboard next to
the HTTP simulator's machines.

It uses only the platform's management API (as an integrator would): logs in with a JWT, adds
two machines to the plant if they are missing (``edge-press-opcua``, ``edge-packer-modbus``),
issues each (and the seeded ``gateway-01``) a device token once, keeps the tokens in files (mode
0600) under ``--workdir``, and writes the gateway config there, referring to them by
``token_file``. Run again, it reuses all of that.
"""

import asyncio
import json
import logging
import os
import socket
from pathlib import Path

import httpx
import yaml

from edge.config import load
from edge.gateway import Gateway
from edge.simulators import STATE_BITS, STATE_CODES, ModbusMachine, OpcUaMachine

logger = logging.getLogger("edge.demo")
MACHINES = {
    "edge-press-opcua": {"name": "Press 5 (OPC UA via edge)", "model": "HP-400", "ideal_cycle_time": "2.0"},
    "edge-packer-modbus": {"name": "Packer 2 (Modbus via edge)", "model": "PK-20", "ideal_cycle_time": "4.0"},
}
GATEWAY = "gateway-01"


def free_port(preferred: int) -> int:
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def demo_config(
    *, platform: str, opcua: OpcUaMachine, modbus: ModbusMachine, tokens: dict[str, Path], queue: Path
) -> dict:
    """The gateway config for the two simulated machines (also what edge/README.md shows)."""
    press, packer = list(MACHINES)
    registers = ModbusMachine.REGISTERS
    return {
        "uplink": {"url": platform, "batch_size": 500, "retry_initial": 1, "retry_max": 30},
        "gateway": {"uid": GATEWAY, "token_file": str(tokens[GATEWAY])},
        "queue": {"path": str(queue), "max_rows": 500000, "max_age": 86400},
        "health": {"interval": 30},
        "connectors": [
            {"name": "press_opcua", "type": "opcua", "url": opcua.url, "mode": "subscription", "interval": 0.5},
            {"name": "packer_modbus", "type": "modbus", "host": modbus.host, "port": modbus.port, "interval": 1},
        ],
        "devices": [
            {"uid": press, "token_file": str(tokens[press]), "tags": [
                {"connector": "press_opcua", "metric": "temperature", "node": opcua.node_id("Temperature"),
                 "deadband": 0.5, "max_interval": 60},
                {"connector": "press_opcua", "state": {"map": {code: state for state, code in STATE_CODES.items()}},
                 "node": opcua.node_id("State")},
                {"connector": "press_opcua", "metric": "count_total", "node": opcua.node_id("CountTotal")},
                {"connector": "press_opcua", "metric": "count_good", "node": opcua.node_id("CountGood")},
            ]},
            {"uid": packer, "token_file": str(tokens[packer]), "tags": [
                {"connector": "packer_modbus", "metric": "temperature", "table": "holding", "address": 0,
                 "type": "int16", "scale": 0.1, "deadband": 0.5, "max_interval": 60},
                {"connector": "packer_modbus", "table": "holding", "address": registers["status"].address,
                 "state": {"bits": STATE_BITS, "default": "idle"}},
                {"connector": "packer_modbus", "metric": "count_total", "table": "holding", "address": 2,
                 "type": "uint32", "word_order": "little"},
                {"connector": "packer_modbus", "metric": "count_good", "table": "holding", "address": 4,
                 "type": "uint32", "word_order": "little"},
                {"connector": "packer_modbus", "metric": "power", "table": "holding", "address": 6,
                 "type": "float32", "deadband": 0.2},
            ]},
        ],
    }  # fmt: skip


def _results(response: httpx.Response) -> list[dict]:
    response.raise_for_status()
    data = response.json()
    return data["results"] if isinstance(data, dict) else data


def provision(platform: str, username: str, password: str, plant_name: str, workdir: Path) -> dict[str, Path]:
    """Make sure the demo machines exist and each has a token file; returns uid -> token file."""
    with httpx.Client(base_url=platform, timeout=10) as api:
        answer = api.post("/api/v1/auth/token/", json={"username": username, "password": password})
        if answer.status_code != 200:
            raise SystemExit(
                f"Logging in to {platform} as {username} failed ({answer.status_code}): {answer.text[:200]}"
            )
        api.headers["Authorization"] = f"Bearer {answer.json()['access']}"
        plants = [
            p for p in _results(api.get("/api/v1/plants/", params={"search": plant_name})) if p["name"] == plant_name
        ]
        if not plants:
            raise SystemExit(
                f"No plant named {plant_name!r} on {platform}: run `make run` (it seeds it) or pass --plant."
            )
        lines = _results(api.get("/api/v1/lines/", params={"plant": plants[0]["id"]}))
        devices = {}
        for uid in [*MACHINES, GATEWAY]:
            found = [d for d in _results(api.get("/api/v1/devices/", params={"search": uid})) if d["uid"] == uid]
            if found:
                devices[uid] = found[0]["id"]
            elif uid in MACHINES:
                body = {"uid": uid, "kind": "machine", "line": lines[0]["id"], **MACHINES[uid]}
                created = api.post("/api/v1/devices/", json=body)
                created.raise_for_status()
                devices[uid] = created.json()["id"]
                logger.info("Added %s to %s.", uid, plant_name)
            else:
                raise SystemExit(f"Device {uid} is missing on {platform}: `make run` seeds it.")
        files = {}
        for uid, device_id in devices.items():
            files[uid] = workdir / f"{uid}.token"
            if not files[uid].exists():
                issued = api.post(f"/api/v1/devices/{device_id}/tokens/", json={"name": "edge-demo"})
                issued.raise_for_status()
                descriptor = os.open(files[uid], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(descriptor, "w") as fh:
                    fh.write(issued.json()["token"])
        return files


async def demo_run(args) -> None:
    workdir = Path(args.workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    password = args.password
    if password is None:
        credentials = Path("var/demo-credentials.json")
        if not credentials.exists():
            raise SystemExit(
                "No --password and no var/demo-credentials.json: run `make run` first, from the repo root."
            )
        password = json.loads(credentials.read_text())[args.username]
    tokens = await asyncio.to_thread(provision, args.platform, args.username, password, args.plant, workdir)
    opcua = await OpcUaMachine(free_port(4840)).start()
    modbus = await ModbusMachine(free_port(5020)).start()
    modbus.set("temperature", 300)  # 30.0 °C before its first cycle, not 0
    config_path = workdir / "edge.yaml"
    config = demo_config(
        platform=args.platform, opcua=opcua, modbus=modbus, tokens=tokens, queue=workdir / "queue.sqlite3"
    )
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    logger.info(
        "OPC UA machine on %s, Modbus machine on %s:%d; gateway config %s",
        opcua.url,
        modbus.host,
        modbus.port,
        config_path,
    )
    gateway = Gateway(load(config_path))
    try:
        await asyncio.gather(gateway.run_forever(), opcua.produce(), modbus.produce())
    finally:
        await modbus.stop()
        await opcua.stop()
