"""The embedded default (`make run` without a broker): an alarm raised by a beat-scheduled timer reaches
a browser stream of the same process.

``manage.py serve`` (Procfile.dev's ``web``) runs Celery beat as a thread of the Daphne process when
Celery is eager. Here a real server runs that command on a database of its own; a real WebSocket
client follows plant A; then a "no data" rule is added. Nothing is posted: only the beat timer
``run_alarm_timers`` can raise the alarm, from beat's thread, and the browser must receive it.
"""

import json
import socket
import subprocess
import sys
import time

import pytest
from websockets.sync.client import connect

from devices.tests.servers import BASE_DIR, Daphne, ServerDatabase, session_login


class EmbeddedServer(Daphne):
    """``manage.py serve`` instead of bare Daphne: the web server with beat inside."""

    def start(self, timeout: float = 30) -> "EmbeddedServer":
        log = self.log_path.open("a")
        command = [sys.executable, "manage.py", "serve", "-b", "127.0.0.1", "-p", str(self.port)]
        self.process = subprocess.Popen(command, cwd=BASE_DIR, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self._wait_until_listening(timeout)

    def _wait_until_listening(self, timeout: float) -> "EmbeddedServer":
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            assert self.process.poll() is None, f"serve exited: {self.log_tail()}"
            assert time.monotonic() < deadline, f"serve did not start within {timeout} s: {self.log_tail()}"
            time.sleep(0.05)


@pytest.fixture
def embedded(tmp_path):
    database = ServerDatabase(tmp_path).create()
    seeded = database.run_python("from devices.tests.e2e_seed import seed; seed(devices=1, sensor=False)")
    database.manage("sync_schedules")
    server = EmbeddedServer(database.env, log=tmp_path / "serve.log").start()
    try:
        yield database, server, seeded
    finally:
        server.stop()
        database.drop()


def test_alarm_raised_by_a_beat_timer_reaches_a_browser_of_the_web_process(embedded):
    database, server, seeded = embedded
    plant = seeded["plants"]["A"]
    cookie = session_login(server.url, "operator", seeded["password"])
    ws_url = server.url.replace("http://", "ws://") + f"/ws/live/?plant={plant}"
    headers = {"Cookie": f"sessionid={cookie}", "Origin": server.url}
    with connect(ws_url, additional_headers=headers, open_timeout=5) as browser:
        assert json.loads(browser.recv(timeout=5))["kind"] == "hello"  # subscribed to plant A
        # The press has never sent anything: the next timer run (every 5 s) finds it silent.
        database.run_python(
            "from alerts.tests.factories import make_rule; from devices.models import Plant; "
            f"make_rule(Plant.objects.get(pk={plant}), name='Press silent', metric='', condition='no_data', "
            "no_data_seconds=60, threshold=None, severity='info', action='Check the network.'); print('{}')"
        )
        alarm, frames, deadline = None, [], time.monotonic() + 20
        while alarm is None and time.monotonic() < deadline:
            try:
                data = json.loads(browser.recv(timeout=deadline - time.monotonic()))
            except TimeoutError:
                break
            frames += data if isinstance(data, list) else [data]
            alarm = next((frame for frame in frames if frame.get("kind") == "alarm"), None)
    assert alarm is not None, f"no alarm event within 20 s; frames: {frames}; server log: {server.log_tail()}"
    assert alarm["rule"] == "Press silent"
    assert alarm["device_id"] == seeded["devices"]["press-001"]["id"]
    assert alarm["state"] == "active_unack"
