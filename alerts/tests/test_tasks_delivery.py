"""Task contracts: idempotent dispatch and delivery, retries on transient errors (eager, real servers)."""

import pytest

from alerts.models import AlarmEvent, Delivery
from alerts.tasks import deliver_notification, dispatch_notifications
from alerts.tests.factories import make_channel, make_route, make_rule, post_readings

pytestmark = pytest.mark.django_db


def test_sends_once_when_dispatch_and_delivery_run_again(run, plant_a, press, smtp_server):
    make_rule(plant_a)
    make_route(make_channel(plant_a, "email"))
    run(post_readings, press, (0, 99))
    delivery = Delivery.objects.get()
    assert run(dispatch_notifications) == 0  # the event is processed already
    assert deliver_notification(delivery.pk) is None  # sent already: nothing to claim
    assert deliver_notification(delivery.pk + 1000) is None  # gone: logged, no error
    assert len(smtp_server.messages) == 1
    assert Delivery.objects.count() == 1
    assert AlarmEvent.objects.filter(processed_at__isnull=True).count() == 0


def test_retries_a_webhook_answering_503_and_then_delivers(
    run, plant_a, press, http_server, local_receivers, max_retries
):
    max_retries(5)
    http_server.statuses = [503, 502]
    make_rule(plant_a)
    make_route(make_channel(plant_a, "webhook", {"url": http_server.url, "secret": "k" * 16}))
    run(post_readings, press, (0, 99))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.error) == (Delivery.Status.SENT, 3, "")
    assert len(http_server.requests) == 3


def test_applies_a_changed_rule_to_the_next_evaluation(run, plant_a, press):
    from alerts.models import Alarm

    rule = make_rule(plant_a, threshold=80)
    run(post_readings, press, (0, 70))
    rule.threshold = 60
    rule.save()
    run(post_readings, press, (1, 70))
    assert Alarm.objects.get().value == 70.0
