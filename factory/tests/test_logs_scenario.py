"""A full scenario on real processes with ``LOG_FORMAT=json``: every line the web server and the
Celery worker write is one JSON object, the web request's id reaches the worker's task lines, and
no password, token, key or e-mail body appears in any line. The worker's own metrics exporter
(``METRICS_PORT``) and the web's ``/metrics`` show the same work.

Scenario: log in through the form, obtain a JWT pair, issue a device token over the API, post a
reading with it; a real ``celery worker`` evaluates it, raises the alarm and e-mails it to a real
SMTP server. Real services only (MariaDB, Redis broker).
"""

import json
import sys

import httpx
import pytest

from conftest import require_service
from factory.tests.test_metrics import parse, value
from tests.mail import body_text, parsed
from tests.servers import Daphne, ServerDatabase, free_port, session_login
from tests.waiting import wait_until
from tests.worker import start_worker, stop_worker

METRICS_TOKEN = "scenario-metrics-token-4d1f0c9e7b"
SEED = """
import json
from accounts.roles import Role
from alerts.tests.factories import make_channel, make_route
from devices.models import Plant
from devices.tests.factories import make_user
from tests.e2e_seed import seed
data = seed(devices=1, sensor=False)
plant = Plant.objects.get(pk=data["plants"]["A"])
make_user("admin_a", plant=plant, role=Role.ADMIN)
make_route(make_channel(plant, "email", config={"to": ["shift-lead@example.com"]}, name="Shift lead"))
print(json.dumps(data))
"""
UVICORN = [sys.executable, "-m", "uvicorn", "factory.asgi:application", "--host", "127.0.0.1", "--port", "{port}",
           "--workers", "2", "--no-access-log", "--lifespan", "off",
           "--log-config", "deploy/uvicorn-logging.json"]  # fmt: skip
LOGGING_ENV = {
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
    "CELERY_TRACE_LOG_LEVEL": "INFO",  # "Task ... succeeded" per task: the lines the id must reach
    "METRICS_TOKEN": METRICS_TOKEN,
}


def json_lines(text: str, source: str) -> list[dict]:
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"{source} line {number} is not JSON: {line[:300]}")
        assert isinstance(record, dict), f"{source} line {number} is not a JSON object: {line[:300]}"
        records.append(record)
    return records


def scrape(url: str) -> dict:
    response = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return parse(response.text)


@pytest.fixture
def stack(tmp_path, smtp_server):
    """Uvicorn with two workers and docker-compose.yml's logging config, as the production web."""
    require_service("CELERY_BROKER_URL")
    require_service("DATABASE_URL")  # a database the worker process shares with the server
    database = ServerDatabase(tmp_path, broker=True).create()
    database.env.update(LOGGING_ENV)
    server = Daphne(database.env, log=tmp_path / "web.log", server_args=UVICORN)
    try:
        seeded = database.run_python(SEED)
        server.start(timeout=60)
        yield server, seeded
    finally:
        server.stop()
        database.drop()


def test_json_logs_follow_a_request_into_the_worker_and_hold_no_secret(stack, smtp_server, tmp_path):
    from factory.celery import app

    server, seeded = stack
    app.control.purge()  # nothing another test left in the queue runs on this worker
    worker_log, worker_metrics = tmp_path / "worker.log", free_port()
    worker_env = {
        **server.env,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "SITE_URL": "http://factory.test",
        "METRICS_PORT": str(worker_metrics),
        "METRICS_BIND": "127.0.0.1",
    }
    name = f"logs-{free_port()}@localhost"
    worker = start_worker(worker_env, purge=False, name=name, log=worker_log, loglevel="info")
    try:
        password = seeded["password"]
        session_login(server.url, "admin_a", password)
        pair = httpx.post(f"{server.url}/api/v1/auth/token/", json={"username": "admin_a", "password": password})
        assert pair.status_code == 200, pair.text
        access, refresh = pair.json()["access"], pair.json()["refresh"]
        press = seeded["devices"]["press-001"]
        issued = httpx.post(
            f"{server.url}/api/v1/devices/{press['id']}/tokens/",
            json={"name": "scenario"},
            headers={"Authorization": f"Bearer {access}"},
        )
        assert issued.status_code == 201, issued.text
        device_token = issued.json()["token"]
        reading = httpx.post(
            f"{server.url}/api/v1/telemetry/",
            json={"values": {"vibration": 9.5}},
            headers={"Authorization": f"Device {device_token}"},
        )
        assert reading.status_code == 202, reading.text
        request_id = reading.headers["X-Request-ID"]
        wait_until(lambda: smtp_server.messages, timeout=60, what="the alarm e-mail")
        body = body_text(parsed(smtp_server.messages[0]))
        assert "Vibration high" in body

        worker_scrape = scrape(f"http://127.0.0.1:{worker_metrics}/metrics")
        task = "alerts.tasks.evaluate_rules"
        assert value(worker_scrape, "factory_celery_task_seconds_count", task=task, state="success") >= 1
        web_scrape = scrape(f"{server.url}/metrics")
        assert value(web_scrape, "factory_ingest_readings_total", transport="http") == 1
        assert value(web_scrape, "factory_alarms_open", severity="warning", state="active_unack") == 1
    finally:
        stop_worker(worker)

    web_records = json_lines(server.log_path.read_text(), "web")
    worker_records = json_lines(worker_log.read_text(), "worker")
    assert web_records and worker_records
    traced = [r for r in worker_records if request_id in (r.get("request_id") or "")]
    assert any(r["logger"] == "celery.app.trace" and task in r["message"] for r in traced), (
        f"no task line of the worker carries {request_id}: {worker_records[-10:]}"
    )
    assert any("deliver" in r["message"] for r in traced), "the e-mail delivery task queued by the evaluation"

    everything = server.log_path.read_text() + worker_log.read_text()
    secrets = {
        "password": password,
        "access token": access,
        "refresh token": refresh,
        "device token": device_token,
        "device token's secret": device_token.split(".", 1)[1],
        "seeded device token": press["token"],
        "metrics token": METRICS_TOKEN,
        "secret key": server.env["SECRET_KEY"],
    }
    for what, secret in secrets.items():
        assert secret not in everything, f"the {what} is in the logs"
    body_lines = [line.strip() for line in body.splitlines() if len(line.strip()) > 24]
    assert body_lines and not [line for line in body_lines if line in everything], "the e-mail body is in the logs"
