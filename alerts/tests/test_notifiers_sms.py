"""The SMS notifier against a local Twilio-style API."""

import urllib.parse

import pytest

from alerts.models import Delivery
from alerts.tests.factories import make_channel, make_route, make_rule, post_readings

pytestmark = pytest.mark.django_db


def test_sends_sms_through_the_twilio_style_api_with_basic_auth(
    run, plant_a, press, http_server, local_receivers, settings
):
    settings.SMS_API_URL, settings.SMS_ACCOUNT_SID = f"{http_server.url}/2010-04-01", "AC123"
    settings.SMS_AUTH_TOKEN, settings.SMS_FROM = "tok-456", "+4930123456"
    make_rule(plant_a, name="Hot", severity="critical")
    make_route(make_channel(plant_a, "sms", {"to": ["+4915112345678"]}), severities=["critical"])
    run(post_readings, press, (0, 99))
    request = http_server.requests[0]
    assert request["path"] == "/2010-04-01/Accounts/AC123/Messages.json"
    assert request["headers"]["Authorization"] == "Basic QUMxMjM6dG9rLTQ1Ng=="  # AC123:tok-456
    form = urllib.parse.parse_qs(request["body"].decode())
    assert (form["To"], form["From"]) == (["+4915112345678"], ["+4930123456"])
    assert form["Body"][0].startswith("[CRITICAL] press-01: Hot")


def test_routes_only_the_severities_a_route_asks_for(run, plant_a, press, http_server, local_receivers, settings):
    settings.SMS_API_URL, settings.SMS_ACCOUNT_SID, settings.SMS_AUTH_TOKEN, settings.SMS_FROM = (
        http_server.url, "AC1", "t", "+49301",
    )  # fmt: skip
    make_rule(plant_a, severity="info")
    make_route(make_channel(plant_a, "sms", {"to": ["+4915112345678"]}), severities=["critical"])
    run(post_readings, press, (0, 99))
    assert http_server.requests == []
    assert not Delivery.objects.exists()


def test_marks_the_channel_failing_when_the_api_refuses_the_credentials(
    run, plant_a, press, http_server, local_receivers, settings
):
    settings.SMS_API_URL, settings.SMS_ACCOUNT_SID, settings.SMS_AUTH_TOKEN, settings.SMS_FROM = (
        http_server.url, "AC1", "wrong", "+49301",
    )  # fmt: skip
    http_server.statuses = [401]
    make_rule(plant_a)
    make_route(make_channel(plant_a, "sms", {"to": ["+4915112345678"]}))
    run(post_readings, press, (0, 99))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 1)
    assert "HTTP 401" in delivery.error
    from alerts.models import NotificationChannel

    assert NotificationChannel.objects.get().status == NotificationChannel.Status.FAILING
