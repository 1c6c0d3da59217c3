"""What a failed delivery records and who reads it: the status and a short reason, never the
receiver's answer; plant admins only."""

import pytest

from alerts.models import Delivery, NotificationChannel
from alerts.tests.factories import at, make_channel, make_route, make_rule, post_readings
from conftest import assert_status

pytestmark = pytest.mark.django_db
LEAK = "db_password=hunter2-internal"
SECRET = "k" * 16


@pytest.mark.parametrize(
    ("status", "recorded"),
    [(400, "HTTP 400 Bad Request from 127.0.0.1"), (500, "HTTP 500 Internal Server Error from 127.0.0.1")],
)
def test_stores_the_status_but_never_the_receivers_answer(
    run, plant_a, press, plant_admin, http_server, local_receivers, smtp_server, max_retries, status, recorded
):
    max_retries(0)
    http_server.statuses = [status]
    http_server.body = f'{{"error": "{LEAK}"}}'.encode()
    make_rule(plant_a)
    make_route(make_channel(plant_a, "webhook", {"url": f"{http_server.url}/hook", "secret": SECRET}))
    run(post_readings, press, (0, 99))
    assert len(http_server.requests) == 1
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.error) == (Delivery.Status.FAILED, recorded)
    channel = NotificationChannel.objects.get()
    assert LEAK not in channel.last_error
    assert all(LEAK.encode() not in message.content for message in smtp_server.messages)


def test_shows_delivery_errors_to_plant_admins_only(client_for, viewer, operator, plant_admin, plant_a):
    channel = make_channel(plant_a, "webhook", {"url": "https://93.184.215.14/hook"}, status="failing",
                           last_error="HTTP 404 Not Found from 93.184.215.14")  # fmt: skip
    delivery = Delivery.objects.create(
        channel=channel, plant=plant_a, key="slot:1", scheduled_at=at(0), status="failed", error="HTTP 404 Not Found"
    )
    for user in (viewer, operator):
        client = client_for(user)
        listed = assert_status(client.get("/api/v1/notification-deliveries/"), 200).json()["results"]
        assert [(row["id"], row["error"]) for row in listed] == [(delivery.pk, "")]
        one = assert_status(client.get(f"/api/v1/notification-deliveries/{delivery.pk}/"), 200).json()
        assert (one["status"], one["error"]) == ("failed", "")
        channels = assert_status(client.get("/api/v1/notification-channels/"), 200).json()["results"]
        assert [(row["status"], row["last_error"]) for row in channels] == [("failing", "")]
    admin = client_for(plant_admin)
    assert assert_status(admin.get(f"/api/v1/notification-deliveries/{delivery.pk}/"), 200).json()["error"] == (
        "HTTP 404 Not Found"
    )
    body = assert_status(admin.get(f"/api/v1/notification-channels/{channel.pk}/"), 200).json()
    assert body["last_error"] == "HTTP 404 Not Found from 93.184.215.14"
