"""Scale-out: two Daphne processes on one Redis channel layer behave as one dashboard.

A reading posted to process A reaches a browser stream connected to process B, and a browser
of another plant connected to B receives nothing. The module's tests share the two servers: each
writes only to devices of its own (``own_device``, tests/shared_stack.py).
"""

import json

import httpx
import pytest
from websockets.sync.client import connect

from conftest import require_service
from tests.servers import Daphne, ServerDatabase, next_event, session_login


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    require_service("REDIS_URL")
    workdir = tmp_path_factory.mktemp("scale-out")
    database = ServerDatabase(workdir).create()
    seeded = database.run_python("from tests.e2e_seed import seed; seed(devices=1, sensor=False)")
    servers = [Daphne(database.env, log=workdir / f"daphne-{name}.log").start() for name in ("a", "b")]
    try:
        yield servers, seeded
    finally:
        for server in servers:
            server.stop()
        database.drop()


def live(server: Daphne, cookie: str, query: str):
    ws_url = server.url.replace("http://", "ws://") + f"/ws/live/{query}"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": server.url}
    return connect(ws_url, additional_headers=headers, open_timeout=5)


def test_a_reading_posted_to_process_a_reaches_a_browser_on_process_b(stack, own_device):
    (server_a, server_b), seeded = stack
    plant_a, plant_b = seeded["plants"]["A"], seeded["plants"]["B"]
    operator = session_login(server_b.url, "operator", seeded["password"])
    viewer_b = session_login(server_b.url, "viewer_b", seeded["password"])
    with live(server_b, operator, f"?plant={plant_a}") as ours, live(server_b, viewer_b, f"?plant={plant_b}") as theirs:
        assert json.loads(ours.recv(timeout=5))["kind"] == "hello"
        assert json.loads(theirs.recv(timeout=5))["kind"] == "hello"
        press = own_device("press-001")
        response = httpx.post(
            f"{server_a.url}/api/v1/telemetry/",
            json={"values": {"temperature": 64.5}, "state": "running"},
            headers={"Authorization": f"Device {press['token']}"},
        )
        assert response.status_code == 202, response.text
        telemetry, frames = next_event(ours, "telemetry", timeout=10)  # after its status (it came online)
        assert telemetry is not None, frames
        assert telemetry["device_id"] == press["id"]
        assert telemetry["values"]["temperature"]["value"] == 64.5
        assert {"kind": "status", "online": True}.items() <= next(f for f in frames if f["kind"] == "status").items()
        # Plant B's stream then gets its own plant's next reading, and nothing of plant A before it.
        paint = own_device("paint-b01")
        response = httpx.post(
            f"{server_a.url}/api/v1/telemetry/",
            json={"values": {"temperature": 30.5}},
            headers={"Authorization": f"Device {paint['token']}"},
        )
        assert response.status_code == 202, response.text
        theirs_telemetry, theirs_frames = next_event(theirs, "telemetry", timeout=10)
        assert theirs_telemetry is not None and theirs_telemetry["device_id"] == paint["id"], theirs_frames
        assert {frame.get("device_id") for frame in theirs_frames} == {paint["id"]}, theirs_frames
