"""Isolation of parallel test processes (``make test``: pytest-xdist) on the shared services.

Loaded with ``python -m pytest -p tests.xdist_env`` (the Makefile), so it runs in every process
before pytest-django imports the settings, and the environment it changes is what
``factory/settings.py`` reads. Each pytest process already has its own MariaDB test database
(conftest.py) and SQLite database; what two processes would otherwise share:

- Redis: channel-layer groups and cache keys derive from primary keys, which two test databases
  hand out alike, and a Celery worker started by one process would take the other's tasks from
  the same queue. Each xdist worker gets its own Redis database numbers (worker n: the configured
  numbers minus 2n).
- Mosquitto: the MQTT bridge of one process would store the other's messages, and two bridges
  with the same client id take each other's session. Each xdist worker after the first gets a
  Mosquitto of its own (the same program, its default local-only configuration) on a free port.

The first worker (``gw0``), the controller and runs without xdist keep the configured URLs.
"""

import atexit
import os
import shutil
import socket
import subprocess
import time
from urllib.parse import urlsplit, urlunsplit


def _worker_index() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0


def _other_redis_db(url: str, index: int) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        return url
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db - 2 * index) % 16}"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _own_mosquitto(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or parts.hostname not in ("127.0.0.1", "localhost") or not shutil.which("mosquitto"):
        return url
    port = _free_port()
    process = subprocess.Popen(["mosquitto", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(process.terminate)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return urlunsplit(parts._replace(netloc=f"{parts.hostname}:{port}"))
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"the Mosquitto of test process {os.environ['PYTEST_XDIST_WORKER']} did not listen")


def _isolate() -> None:
    index = _worker_index()
    if not index:
        return
    for name in ("REDIS_URL", "CELERY_BROKER_URL"):
        if os.environ.get(name):
            os.environ[name] = _other_redis_db(os.environ[name], index)
    if os.environ.get("MQTT_URL"):
        os.environ["MQTT_URL"] = _own_mosquitto(os.environ["MQTT_URL"])


_isolate()
