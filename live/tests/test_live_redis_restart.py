"""The live stream survives a Redis restart: a browser stays connected and gets new readings again.

Real parts: a private ``redis-server`` (killed and restarted on the same port, so the shared Redis
of the other tests is untouched), a real Daphne on the production channel layer, a WebSocket
client with a session from the login form, readings posted over HTTP.
"""

import shutil
import signal
import subprocess

import httpx
import pytest

from conftest import REQUIRE_SERVICES, require_service
from tests.servers import free_port, live_stream, next_event, seeded_stack
from tests.waiting import poll


def start_redis(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def answers() -> bool:
        ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        return ping.stdout.strip() == "PONG"

    if not poll(answers, timeout=10):
        process.kill()
        pytest.fail(f"redis-server did not answer on port {port}")
    return process


@pytest.fixture
def private_redis():
    require_service("REDIS_URL")
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed: this test restarts a Redis of its own."
        pytest.fail(message) if REQUIRE_SERVICES else pytest.skip(message)
    port = free_port()
    processes = [start_redis(port)]

    def restart():
        processes[-1].send_signal(signal.SIGKILL)  # a crash: nothing is flushed, clients see a reset
        processes[-1].wait(5)
        processes.append(start_redis(port))

    yield port, restart
    processes[-1].kill()
    processes[-1].wait(5)


def test_a_browser_gets_readings_again_after_redis_restarts(tmp_path, private_redis):
    port, restart = private_redis
    seed = "from tests.e2e_seed import seed; seed(devices=1, sensor=False)"
    with seeded_stack(tmp_path, seed, env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"}) as (server, seeded):
        press = seeded["devices"]["press-001"]
        value = iter(range(1, 10_000))

        def post():
            body = {"values": {"temperature": float(next(value))}, "state": "running"}
            headers = {"Authorization": f"Device {press['token']}"}
            response = httpx.post(f"{server.url}/api/v1/telemetry/", json=body, headers=headers, timeout=10)
            assert response.status_code == 202, response.text

        with live_stream(server, "operator", seeded["password"], seeded["plants"]["A"]) as browser:
            before, _ = next_event(browser, "telemetry", timeout=10, before_each=post)
            assert before is not None, "no reading reached the browser before the restart"
            restart()
            after, frames = next_event(browser, "telemetry", timeout=30, before_each=post)
            assert after is not None, f"no reading after Redis came back; frames: {frames}\n{server.log_tail()}"
            assert after["values"]["temperature"]["value"] > before["values"]["temperature"]["value"]
