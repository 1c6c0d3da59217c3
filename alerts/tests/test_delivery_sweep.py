"""A delivery a dead worker left ``sending`` is sent again by the sweeper, with the same idempotency key."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.models import Delivery
from alerts.services.notifications import deliveries_sweep
from alerts.tasks import sweep_deliveries
from alerts.tests.factories import make_channel, make_route, make_rule, post_readings

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent_once(run, plant_a, press, http_server, local_receivers):
    make_rule(plant_a)
    make_route(make_channel(plant_a, "webhook", {"url": f"{http_server.url}/hook", "secret": "k" * 16}))
    run(post_readings, press, (0, 99))
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.SENT and len(http_server.requests) == 1
    return delivery


def _left_sending(delivery, seconds_ago: float) -> None:
    # What a worker killed after the POST left behind: the row claimed, never finished.
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.SENDING, sent_at=None, claimed_at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def test_sends_again_a_delivery_left_sending_with_the_same_idempotency_key(run, sent_once, http_server, settings):
    _left_sending(sent_once, settings.NOTIFY_STUCK_SECONDS + 1)
    assert run(sweep_deliveries) == 1
    sent_once.refresh_from_db()
    assert (sent_once.status, sent_once.attempts) == (Delivery.Status.SENT, 2)
    first, second = http_server.requests
    key = f"channel-{sent_once.channel_id}-{sent_once.key.replace(':', '-')}"
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"] == key
    assert json.loads(first["body"])["idempotency_key"] == key  # also inside the signed body


def test_leaves_a_delivery_being_sent_now_alone(run, sent_once, http_server, settings):
    _left_sending(sent_once, settings.NOTIFY_STUCK_SECONDS - 5)
    assert run(sweep_deliveries) == 0
    sent_once.refresh_from_db()
    assert sent_once.status == Delivery.Status.SENDING
    assert len(http_server.requests) == 1


def test_sweeping_twice_sends_once(run, sent_once, http_server, settings):
    _left_sending(sent_once, settings.NOTIFY_STUCK_SECONDS + 1)
    now = timezone.now()
    assert deliveries_sweep(now=now) == [sent_once.pk]
    assert deliveries_sweep(now=now) == []  # already back to retrying, not stuck
    run(sweep_deliveries)
    assert len(http_server.requests) == 1  # the retrying row waits for its own retry, not the sweeper
