"""/api/v1/notification-channels/, -routes/, -mutes/, -deliveries/."""

import pytest

from alerts.models import NotificationChannel, NotificationMute, NotificationRoute
from alerts.tests.factories import make_channel, make_route
from conftest import assert_status
from devices.tests.factories import make_user

pytestmark = pytest.mark.django_db
URL = "/api/v1/notification-channels/"


def test_creates_webhook_channel_and_masks_its_secret(client_for, plant_admin, plant_a):
    payload = {"plant": plant_a.pk, "name": "Ops hook", "kind": "webhook",
               "config": {"url": "https://93.184.215.14/hook", "secret": "a-long-signing-secret"}}  # fmt: skip
    body = assert_status(client_for(plant_admin).post(URL, payload, format="json"), 201).json()
    assert body["config"] == {"url": "https://93.184.215.14/hook", "secret": "********"}
    channel = NotificationChannel.objects.get()
    assert channel.config["secret"] == "a-long-signing-secret"
    # Sending the mask back keeps the stored secret.
    patch = {"config": {"url": "https://93.184.215.14/v2", "secret": "********"}}
    assert_status(client_for(plant_admin).patch(f"{URL}{channel.pk}/", patch, format="json"), 200)
    channel.refresh_from_db()
    assert channel.config == {"url": "https://93.184.215.14/v2", "secret": "a-long-signing-secret"}


@pytest.mark.parametrize(
    ("kind", "config", "where"),
    [
        ("webhook", {"url": "ftp://x.example.com"}, "url"),
        ("webhook", {"url": "https://x.example.com", "secret": "short"}, "secret"),
        ("sms", {"to": ["0151 123"]}, "to"),
        ("email", {"to": ["not-an-address"]}, "to"),
        ("email", {"cc": ["a@example.com"]}, "cc"),
        ("pager", {}, None),
    ],
)
def test_rejects_invalid_channel_config_with_field_errors(client_for, plant_admin, plant_a, kind, config, where):
    payload = {"plant": plant_a.pk, "name": "Bad", "kind": kind, "config": config}
    body = assert_status(client_for(plant_admin).post(URL, payload, format="json"), 400).json()
    if where is None:
        assert "kind" in body["errors"]
    else:
        assert where in body["errors"]["config"], body
    assert not NotificationChannel.objects.exists()


def test_rejects_a_kind_switched_off(client_for, plant_admin, plant_a, settings):
    settings.NOTIFIER_SMS_ENABLED = False
    payload = {"plant": plant_a.pk, "name": "SMS", "kind": "sms", "config": {"to": ["+4915112345678"]}}
    body = assert_status(client_for(plant_admin).post(URL, payload, format="json"), 400).json()
    assert "switched off" in str(body["errors"]["kind"])


def test_permission_trio_on_channels(client_for, outsider, viewer, plant_admin, plant_a):
    channel = make_channel(plant_a, "email")
    assert_status(client_for(outsider).get(f"{URL}{channel.pk}/"), 404)
    assert_status(client_for(viewer).patch(f"{URL}{channel.pk}/", {"enabled": False}, format="json"), 403)
    body = assert_status(client_for(plant_admin).patch(f"{URL}{channel.pk}/", {"enabled": False}, format="json"), 200)
    assert body.json()["enabled"] is False


def test_saving_a_failing_channel_puts_it_back_to_ok(client_for, plant_admin, plant_a):
    channel = make_channel(plant_a, "email", status="failing", last_error="550 no such user")
    body = assert_status(
        client_for(plant_admin).patch(f"{URL}{channel.pk}/", {"config": {"to": ["b@example.com"]}}, format="json"), 200
    ).json()
    assert (body["status"], body["last_error"]) == ("ok", "")


def test_creates_escalation_route_and_refuses_strangers_and_foreign_channels(
    client_for, plant_admin, plant_a, plant_b, operator
):
    channel = make_channel(plant_a, "email")
    foreign = make_channel(plant_b, "email")
    stranger = make_user("stranger")
    client = client_for(plant_admin)
    url = "/api/v1/notification-routes/"
    ok = {"plant": plant_a.pk, "channel": channel.pk, "severities": ["critical"], "roles": ["admin"],
          "users": [operator.pk], "delay_minutes": 15}  # fmt: skip
    body = assert_status(client.post(url, ok, format="json"), 201).json()
    assert (body["delay_minutes"], body["users"]) == (15, [operator.pk])
    bad = assert_status(client.post(url, {**ok, "users": [stranger.pk]}, format="json"), 400).json()
    assert "users" in bad["errors"]
    bad = assert_status(client.post(url, {**ok, "channel": foreign.pk}, format="json"), 400).json()
    assert "does not exist" in str(bad["errors"]["channel"])
    bad = assert_status(client.post(url, {**ok, "severities": []}, format="json"), 400).json()
    assert "severities" in bad["errors"]
    assert NotificationRoute.objects.count() == 1


def test_any_member_mutes_their_own_notifications_for_a_device(client_for, viewer, operator, press, foreign_press):
    url = "/api/v1/notification-mutes/"
    body = assert_status(client_for(viewer).post(url, {"device": press.pk, "minutes": 60}, format="json"), 201).json()
    assert body["device"] == press.pk and body["until"]
    assert_status(client_for(viewer).post(url, {"device": foreign_press.pk, "minutes": 60}, format="json"), 400)
    assert assert_status(client_for(operator).get(url), 200).json()["count"] == 0
    mute = NotificationMute.objects.get()
    assert mute.user == viewer
    assert_status(client_for(operator).delete(f"{url}{mute.pk}/"), 404)
    assert_status(client_for(viewer).delete(f"{url}{mute.pk}/"), 204)


def test_lists_deliveries_of_plant_a_only(client_for, viewer, plant_a, plant_b):
    from alerts.models import Delivery
    from alerts.tests.factories import at

    mine = Delivery.objects.create(channel=make_channel(plant_a), plant=plant_a, key="slot:1", scheduled_at=at(0))
    Delivery.objects.create(channel=make_channel(plant_b), plant=plant_b, key="slot:1", scheduled_at=at(0))
    make_route(mine.channel)
    body = assert_status(client_for(viewer).get("/api/v1/notification-deliveries/"), 200).json()
    assert [row["id"] for row in body["results"]] == [mine.pk]
