"""Metrics of several processes: what every process of one ``METRICS_DIR`` counted is summed in a
scrape (two web servers, as Uvicorn's workers are), and the MQTT bridge's own exporter
(``METRICS_PORT``, as in docker-compose.yml) shows the readings and dead letters it stored.
Real server processes on a scratch database; the bridge needs the real broker.
"""

import json
import subprocess
import sys
import uuid

import httpx
import pytest

from conftest import require_service
from factory.tests.test_metrics import parse, value
from tests.mqtt import mqtt_publisher
from tests.servers import BASE_DIR, Daphne, ServerDatabase, free_port
from tests.waiting import wait_until

TOKEN = "processes-metrics-token-5e0c1d2b"
SEED = "from tests.e2e_seed import seed\nseed(devices=3, sensor=False)"


def scrape(base_url: str) -> dict:
    response = httpx.get(f"{base_url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("metrics-processes")
    database = ServerDatabase(workdir).create()
    database.env["METRICS_TOKEN"] = TOKEN
    server = Daphne(database.env, log=workdir / "first.log")
    try:
        seeded = database.run_python(SEED)
        server.start(timeout=30)
        yield database, server, seeded
    finally:
        server.stop()
        database.drop()


def post(server: Daphne, token: str, body) -> httpx.Response:
    headers = {"Authorization": f"Device {token}", "Content-Type": "application/json"}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{server.url}/api/v1/telemetry/", content=content, headers=headers)


def test_a_scrape_of_either_server_sums_what_both_processes_counted(stack, tmp_path):
    database, first, seeded = stack
    second = Daphne(database.env, log=tmp_path / "second.log").start(timeout=30)
    try:
        before = scrape(first.url)
        one, two = seeded["devices"]["press-001"]["token"], seeded["devices"]["press-002"]["token"]
        batch = {"messages": [{"values": {"temperature": 20.0 + n, "vibration": 0.1}} for n in range(2)]}
        answers = [post(first, one, batch) for _ in range(3)] + [post(second, two, batch) for _ in range(2)]
        assert [answer.status_code for answer in answers] == [202] * 5
        assert post(second, two, b"{not json").status_code == 400
        assert post(first, "0123456789ab.wrong-secret-wrong-secret", batch).status_code == 401
        ids = {answer.headers["X-Request-ID"] for answer in answers}
        assert len(ids) == 5
        after_first, after_second = scrape(first.url), scrape(second.url)
    finally:
        second.stop()
    assert moved(before, after_first, "factory_ingest_messages_total", transport="http") == 10
    assert moved(before, after_first, "factory_ingest_readings_total", transport="http") == 20
    assert moved(before, after_first, "factory_ingest_rejected_total", transport="http", reason="invalid") == 1
    assert moved(before, after_first, "factory_ingest_rejected_total", transport="http", reason="unauthenticated") == 1
    # One request at a time: seven batches of one, each answered by the process it reached.
    assert moved(before, after_first, "factory_group_commit_batch_size_count", endpoint="telemetry") == 7
    assert moved(before, after_first, "factory_group_commit_batch_size_sum", endpoint="telemetry") == 7
    assert moved(before, after_first, "factory_group_commit_seconds_count", endpoint="telemetry") == 7
    assert value(after_second, "factory_ingest_readings_total", transport="http") == value(
        after_first, "factory_ingest_readings_total", transport="http"
    )
    # The second process is gone: what it counted stays in the sums (counters never go back).
    after_stop = scrape(first.url)
    assert moved(before, after_stop, "factory_ingest_readings_total", transport="http") == 20


def test_the_bridge_exports_its_readings_and_dead_letters_and_the_web_sums_them(stack, tmp_path):
    mqtt_url = require_service("MQTT_URL")
    database, web, seeded = stack
    port = free_port()
    env = {**database.env, "MQTT_URL": mqtt_url, "METRICS_PORT": str(port), "METRICS_BIND": "127.0.0.1"}
    env["METRICS_ALLOWED_IPS"] = "192.0.2.0/24"  # not this machine (DEBUG would let loopback in): the token only
    client_id = f"metrics-bridge-{uuid.uuid4().hex[:8]}"
    log = (tmp_path / "bridge.log").open("w")
    bridge = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
        [sys.executable, "manage.py", "mqtt_bridge", "--client-id", client_id, "--flush-ms", "10"],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    exporter = f"http://127.0.0.1:{port}"
    try:

        def connected():
            assert bridge.poll() is None, (tmp_path / "bridge.log").read_text()[-2000:]
            try:
                return value(scrape(exporter), "factory_bridge_connected") == 1
            except httpx.TransportError:
                return False

        wait_until(connected, timeout=40, what="the bridge's exporter to say it is connected")
        refused = httpx.get(f"{exporter}/metrics", headers={"Authorization": "Bearer wrong"})
        assert refused.status_code == 403
        assert httpx.get(f"{exporter}/metrics").status_code == 401
        before = scrape(web.url)
        with mqtt_publisher(mqtt_url) as publish:
            publish("factory/devices/press-003/telemetry", {"values": {"temperature": 21.0, "power": 2.5}})
            publish("factory/devices/no-such-device/telemetry", {"values": {"temperature": 1.0}})

        def stored() -> dict | None:
            now = scrape(web.url)
            done = moved(before, now, "factory_bridge_dead_letters_total", reason="unknown_device") == 1
            return now if done and moved(before, now, "factory_ingest_readings_total", transport="mqtt") == 2 else None

        after = wait_until(stored, timeout=30, what="the web's scrape to count the bridge's reading and dead letter")
        assert moved(before, after, "factory_ingest_rejected_total", transport="mqtt", reason="unknown_device") == 1
        assert moved(before, after, "factory_bridge_lag_seconds_count") >= 1
        from_bridge = scrape(exporter)
        assert value(from_bridge, "factory_ingest_messages_total", transport="mqtt") >= 1
        assert ("factory_alarms_open", (("severity", "critical"), ("state", "active_unack"))) not in from_bridge
    finally:
        bridge.terminate()
        bridge.wait(30)
        log.close()
