"""``python -m edge run`` as a process: SIGTERM stops it with the queue kept, the next run sends it."""

import asyncio
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
import yaml

from edge.simulators import ModbusMachine
from edge.tests.conftest import Receiver, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path, receiver: Receiver, machine: ModbusMachine, queue: str = "queue.sqlite3") -> Path:
    config = {
        "uplink": {"url": receiver.url, "retry_initial": 0.05, "retry_max": 0.2},
        "queue": {"path": queue},
        "connectors": [{"name": "packer", "type": "modbus", "host": "127.0.0.1", "port": machine.port,
                        "interval": 0.05}],
        "devices": [{"uid": "packer-01", "token_env": "EDGE_TEST_PACKER_TOKEN", "tags": [
            {"connector": "packer", "metric": "count_total", "address": 2, "type": "uint32", "word_order": "little"}]}],
    }  # fmt: skip
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def start(config: Path) -> asyncio.subprocess.Process:
    env = {"PATH": "/usr/bin:/bin", "EDGE_TEST_PACKER_TOKEN": "packer-token"}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge", "run", "--config", str(config),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


def queued_counts(path: Path) -> list[int]:
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path) as db:
            rows = db.execute("SELECT body FROM outbox ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # the gateway is still creating its tables
        return []
    return [int(body.split(":")[-1].rstrip("}")) for (body,) in rows]


@pytest.mark.asyncio
async def test_sigterm_keeps_the_queue_and_the_next_run_sends_it(tmp_path):
    machine = await ModbusMachine(free_port()).start()
    receiver = Receiver()  # not started: the uplink is down
    config = write_config(tmp_path, receiver, machine)
    machine.set("count_total", 7)
    process = await start(config)
    try:
        await wait_until(lambda: queued_counts(tmp_path / "queue.sqlite3") == [7], 30, "a queued reading")
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        assert "Stopped; 1 message(s) stay queued." in stderr.decode()

        machine.set("count_total", 8)
        await receiver.start()
        process = await start(config)
        await wait_until(lambda: [m["values"]["count_total"] for m in receiver.of("packer-01")][:2] == [7, 8], 30)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.communicate(), 30)
        await receiver.stop()
        await machine.stop()


@pytest.mark.asyncio
async def test_says_what_is_wrong_when_the_queue_file_cannot_be_opened(tmp_path):
    machine = await ModbusMachine(free_port()).start()
    (tmp_path / "blocked").write_text("a file where the queue's folder should be")
    config = write_config(tmp_path, Receiver(), machine, queue="blocked/queue.sqlite3")
    try:
        process = await start(config)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        await machine.stop()
    assert process.returncode == 1
    assert "Cannot start:" in stderr.decode() and "blocked" in stderr.decode()
