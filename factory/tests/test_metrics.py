"""``/metrics``: who may read it, and counters that move with real work (README "Metrics").

In-process: Django's test client reaches the lean telemetry endpoint (tests/urls.py), the ingest
commits for real (``transaction=True``: the counters count after commit). The web's scrape sums
every process's files in ``METRICS_DIR``, this test process's among them, so each test compares a
scrape before its work with one after. Several processes: test_metrics_processes.py.
"""

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from conftest import assert_status, require_service
from devices.tests.factories import make_device, make_token

TOKEN = "metrics-test-token-0123456789abcdef"


def parse(text: str) -> dict[tuple, float]:
    """Samples of a scrape: ``(name, ((label, value), ...))`` → value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(client: Client | None = None, token: str = TOKEN) -> dict:
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert_status(response, 200)
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def post(device_token: str, body) -> int:
    data = body if isinstance(body, bytes) else json.dumps(body)
    response = Client().post(
        "/api/v1/telemetry/", data, content_type="application/json", HTTP_AUTHORIZATION=f"Device {device_token}"
    )
    return response.status_code


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = TOKEN, []
    return TOKEN


def test_metrics_are_off_when_neither_a_token_nor_addresses_are_configured(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", []
    response = Client().get("/metrics")
    assert_status(response, 404)
    assert "METRICS_TOKEN" in response.json()["detail"]


@pytest.mark.django_db
def test_refuses_a_scrape_without_the_token_or_with_a_wrong_one(metrics_token):
    missing = Client().get("/metrics")
    assert_status(missing, 401)
    assert missing["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert "Authorization: Bearer" in missing.json()["detail"]
    assert_status(Client().get("/metrics", HTTP_AUTHORIZATION="Bearer not-the-token"), 403)
    assert_status(Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"), 200)


@pytest.mark.django_db
def test_lets_in_allowed_addresses_only_and_believes_no_forwarded_header_from_a_client(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", ["10.20.0.0/16"]
    settings.TRUSTED_PROXIES = []
    assert_status(Client(REMOTE_ADDR="10.20.3.4").get("/metrics"), 200)
    refused = Client(REMOTE_ADDR="192.0.2.9").get("/metrics", HTTP_X_FORWARDED_FOR="10.20.3.4")
    assert_status(refused, 403)
    assert "192.0.2.9" in refused.json()["detail"]


@pytest.mark.django_db
def test_lets_in_the_client_a_trusted_proxy_names(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = "", ["10.20.0.0/16"]
    settings.TRUSTED_PROXIES = ["172.30.80.0/24"]
    assert_status(Client(REMOTE_ADDR="172.30.80.2").get("/metrics", HTTP_X_FORWARDED_FOR="10.20.3.4"), 200)
    assert_status(Client(REMOTE_ADDR="172.30.80.2").get("/metrics", HTTP_X_FORWARDED_FOR="192.0.2.9"), 403)


@pytest.mark.django_db(transaction=True)
def test_http_ingest_moves_the_readings_and_rejection_counters(metrics_token):
    device = make_device()
    _, plain = make_token(device)
    before = scrape()
    ts = datetime.now(UTC).isoformat()
    body = {"messages": [{"ts": ts, "values": {"temperature": 21.5, "vibration": 0.2}}, {"values": {"power": 3.0}}]}
    assert post(plain, body) == 202
    assert post(plain, {"values": {"temperature": 22.0}}) == 202
    assert post(plain, {"values": {"temperature": "hot"}}) == 400
    assert post("0123456789ab.not-a-real-secret-at-all", {"values": {"temperature": 1}}) == 401
    after = scrape()

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("factory_ingest_messages_total", transport="http") == 3
    assert moved("factory_ingest_readings_total", transport="http") == 4
    assert moved("factory_ingest_rejected_total", transport="http", reason="invalid") == 1
    assert moved("factory_ingest_rejected_total", transport="http", reason="unauthenticated") == 1
    assert moved("factory_ingest_readings_total", transport="mqtt") == 0


@pytest.mark.django_db(transaction=True)
def test_open_alarms_and_rollouts_are_counted_from_the_database_at_scrape_time(metrics_token, plant_a):
    from alerts.models import Alarm
    from alerts.services.alarms import alarm_raise
    from alerts.tests.factories import make_rule
    from firmware.tests.factories import make_fleet, make_image, make_rollout

    before = scrape()
    device = make_device()
    rule = make_rule(device.plant, metric="vibration", threshold=5.0, severity="critical")
    alarm_raise(rule=rule, device=device, value=9.0, at=datetime.now(UTC))
    make_fleet(plant_a, 1)
    make_rollout(plant_a, make_image(plant_a))
    after = scrape()
    assert value(after, "factory_alarms_open", severity="critical", state=Alarm.State.ACTIVE_UNACK) == (
        value(before, "factory_alarms_open", severity="critical", state=Alarm.State.ACTIVE_UNACK) + 1
    )
    assert value(after, "factory_rollouts", state="draft") == value(before, "factory_rollouts", state="draft") + 1
    assert ("factory_alarms_open", (("severity", "info"), ("state", "active_ack"))) in after  # zero, yet a series


def referenced_metrics(dashboard: dict) -> set[str]:
    import re

    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    return {name for expr in exprs for name in re.findall(r"\bfactory_[a-z_]+\b", expr)}


@pytest.mark.django_db(transaction=True)
def test_every_metric_the_grafana_dashboard_reads_is_in_a_scrape(metrics_token, settings):
    """After real work of each kind (HTTP ingest, a refused request, an MQTT dead letter, tasks that
    succeed, fail and retry), every name the dashboard's queries use is a sample of /metrics."""
    require_service("CELERY_BROKER_URL")  # queue lengths come from the broker
    from devices.services.mqtt_bridge import Received, bridge_process
    from factory.tests.metrics_tasks import broken, flaky, succeed

    settings.CELERY_TASK_ALWAYS_EAGER = False  # the broker's queues are read; tasks below run with apply()
    dashboard = json.loads((Path(django_settings.BASE_DIR) / "deploy/grafana/smart-factory.json").read_text())
    device = make_device()
    assert post(make_token(device)[1], {"values": {"temperature": 20.0}}) == 202
    assert post("garbage", {}) == 401
    bridge_process([Received("factory/devices/nobody/telemetry", b"{}", 1, 1, datetime.now(UTC))])
    succeed.apply()
    with contextlib.suppress(ValueError):
        flaky.apply(throw=False)  # retried once, then fails
    broken.apply(throw=False)  # fails, and is counted (an eager retry's failure propagates uncounted)
    names = {name for name, _ in scrape()}
    referenced = referenced_metrics(dashboard)
    assert referenced, "the dashboard reads no factory_* metric"
    assert sorted(referenced - names) == []


def test_dashboard_is_grafana_json_with_a_prometheus_datasource_variable():
    dashboard = json.loads((Path(django_settings.BASE_DIR) / "deploy/grafana/smart-factory.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
    assert dashboard["templating"]["list"][0]["query"] == "prometheus"
    assert all(panel["datasource"]["uid"] == "${datasource}" for panel in dashboard["panels"])
