"""The toast an operator sees for an alarm a real Celery worker raised, as in production: the web
server keeps the broker (no eager evaluation), a ``celery worker`` process on the server's database,
broker and channel-layer prefix evaluates the reading and delivers the in-app notification, and its
live event reaches the browser through Redis. Real services only (broker, Redis, MariaDB).

How fast is a performance goal (issue 13: within 2 s), measured by ``bench/alarm_toast.py``
(docs/benchmarks.md), not asserted here: the wait below is a bound for a loaded machine.
"""

import os

import httpx
import pytest

from conftest import require_service
from tests.browser import log_in, require_chromium, wait_live
from tests.servers import run_python, seeded_stack
from tests.worker import start_worker, stop_worker

playwright_sync = require_chromium()

# Plant A of tests/e2e_seed.py ("vibration > 5", warning) with an in-app channel routed to it.
SEED = """
from tests.e2e_seed import seed
from alerts.tests.factories import make_channel, make_route
from devices.models import Plant
data = seed(devices=1, sensor=False)
make_route(make_channel(Plant.objects.get(pk=data["plants"]["A"]), "inapp", name="Dashboard"))
"""

ALARMS = """
import json
from alerts.models import Alarm
print(json.dumps({"alarms": list(Alarm.objects.values_list("device__uid", "rule__name"))}))
"""


@pytest.fixture
def stack(tmp_path):
    require_service("CELERY_BROKER_URL")
    require_service("REDIS_URL")  # the worker's live events reach the server's browsers through it
    require_service("DATABASE_URL")  # a database the worker process shares with the server
    with seeded_stack(tmp_path, SEED, broker=True) as (server, seeded):
        yield server, seeded


def queued_tasks(broker_url: str) -> int:
    """Messages waiting in the broker's default queue (kombu's Redis transport: a list named ``celery``)."""
    import redis

    client = redis.Redis.from_url(broker_url)
    try:
        return client.llen("celery")
    finally:
        client.close()


def test_an_alarm_raised_by_a_worker_shows_a_toast_on_the_open_overview(stack, tab, settings):
    from factory.celery import app

    server, seeded = stack
    broker = settings.CELERY_BROKER_URL  # the server's and the worker's (both inherit this environment)
    press = seeded["devices"]["press-001"]
    app.control.purge()  # nothing another test left in the queue runs on this worker
    log_in(tab, server, "operator", seeded["password"])
    wait_live(tab)
    toast = tab.locator("#toasts .toast")
    playwright_sync.expect(toast).to_have_count(0)

    response = httpx.post(
        f"{server.url}/api/v1/telemetry/",
        json={"values": {"vibration": 9.5}},
        headers={"Authorization": f"Device {press['token']}"},
    )
    assert response.status_code == 202, response.text
    # Not evaluated in the web process (eager evaluation would have stored the alarm before the 202):
    # the evaluation waits in the broker for a worker.
    assert run_python(server.env, ALARMS)["alarms"] == []
    assert queued_tasks(broker) >= 1

    worker = start_worker({**server.env}, purge=False, name=f"toast-{os.getpid()}@localhost")
    try:
        playwright_sync.expect(toast).to_have_count(1)
    finally:
        stop_worker(worker)
    playwright_sync.expect(toast).to_have_class("toast toast-warning")
    playwright_sync.expect(toast).to_contain_text("press-001: Vibration high")
    assert run_python(server.env, ALARMS)["alarms"] == [["press-001", "Vibration high"]]
    assert queued_tasks(broker) == 0
