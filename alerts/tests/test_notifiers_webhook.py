"""The webhook notifier against a local HTTP server: HMAC-SHA256 signature, permanent and transient errors."""

import hashlib
import hmac
import json
import socket

import pytest

from alerts.models import Delivery, NotificationChannel
from alerts.tests.factories import make_channel, make_route, make_rule, post_readings
from tests.mail import parsed

pytestmark = pytest.mark.django_db


def test_signs_the_webhook_body_with_hmac_sha256(run, plant_a, press, http_server, local_receivers):
    secret = "s3cret-signing-key-123"
    make_rule(plant_a, name="Hot")
    make_route(make_channel(plant_a, "webhook", {"url": f"{http_server.url}/hook", "secret": secret}))
    run(post_readings, press, (0, 99))
    request = http_server.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    expected = hmac.new(
        secret.encode(), headers["x-factory-timestamp"].encode() + b"." + request["body"], hashlib.sha256
    )
    assert headers["x-factory-signature"] == f"sha256={expected.hexdigest()}"
    payload = json.loads(request["body"])
    assert (payload["plant"], payload["severity"], payload["alarms"][0]["device"]) == ("Plant A", "warning", "press-01")


def test_marks_the_channel_failing_and_tells_plant_admins_on_a_permanent_error(
    run, plant_a, press, plant_admin, http_server, local_receivers, smtp_server
):
    http_server.statuses = [404]
    make_rule(plant_a)
    make_route(make_channel(plant_a, "webhook", {"url": f"{http_server.url}/gone", "secret": "x" * 20}, name="Hook"))
    run(post_readings, press, (0, 99))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 1)
    channel = NotificationChannel.objects.get()
    assert channel.status == NotificationChannel.Status.FAILING
    assert "HTTP 404" in channel.last_error
    told = parsed(smtp_server.messages[0])
    assert smtp_server.messages[0].rcpt_tos == ["plantadmin@example.com"]
    assert told["Subject"] == "Notification channel 'Hook' is failing"


def test_records_a_timeout_as_a_transient_failure(run, plant_a, press, max_retries, local_receivers):
    max_retries(0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # accepts the connection, never answers
        make_rule(plant_a)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        make_route(make_channel(plant_a, "webhook", {"url": url, "secret": "k" * 16, "timeout": 1}))
        run(post_readings, press, (0, 99))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 1)
    assert "timed out" in delivery.error.lower()
    assert NotificationChannel.objects.get().status == NotificationChannel.Status.OK
