"""A real Celery worker SIGKILLed in the middle of a burst of 30 webhook deliveries (skipped on the
embedded default): a new worker and the beat sweeper deliver every one within two minutes, and
the one message the dead worker had already handed over comes twice with the same idempotency key.
"""

import collections
import signal

import pytest
from django.db import transaction

from alerts.models import Delivery
from alerts.tasks import deliver_notification, sweep_deliveries
from alerts.tests.conftest import HttpRecorder
from alerts.tests.factories import at, make_channel
from conftest import require_service
from tests.waiting import wait_until
from tests.worker import forget_queued_tasks, start_worker, stop_worker, worker_env

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]
BURST = 30


def test_delivers_every_webhook_once_more_at_most_when_the_worker_dies_mid_burst(plant_a, settings):
    require_service("CELERY_BROKER_URL")
    require_service("DATABASE_URL")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.NOTIFY_STUCK_SECONDS = 5  # what the test's beat (this process) treats as left behind
    env = worker_env(NOTIFIER_INTERNAL_ALLOWLIST="127.0.0.0/8")
    forget_queued_tasks()
    with HttpRecorder() as receiver:
        receiver.hold = 10  # the 10th message arrives, and the worker dies before the answer
        # The worker is up (it answered ping) before the burst is queued: a solo worker busy with the
        # held 10th message cannot answer ping, so starting it after the queueing made the start
        # wait until that message timed out and the worker went on (none left sending at the kill).
        first = start_worker(env, purge=False, name="crash-first@localhost")
        deliveries = []
        with transaction.atomic():
            for _ in range(BURST):
                # The longest timeout a channel may have: the held 10th request must still be in
                # flight when the worker is killed, however slow the machine (with the default 5 s,
                # a loaded CI run saw it time out first: retrying, not sending).
                config = {"url": f"{receiver.url}/hook", "secret": "k" * 16, "timeout": 30}
                channel = make_channel(plant_a, "webhook", config)
                deliveries.append(
                    Delivery.objects.create(channel=channel, plant=plant_a, key="slot:1", scheduled_at=at(0))
                )
            for delivery in deliveries:
                transaction.on_commit(lambda pk=delivery.pk: deliver_notification.delay(pk))
        try:
            wait_until(lambda: len(receiver.requests) >= 10, timeout=60, what="10 webhooks received")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            stop_worker(first)
        receiver.release.set()
        assert Delivery.objects.filter(status=Delivery.Status.SENDING).count() == 1

        second = start_worker(env, purge=False, name="crash-second@localhost")
        try:

            def all_sent():
                sweep_deliveries()  # this process plays beat
                return Delivery.objects.filter(status=Delivery.Status.SENT).count() == BURST

            wait_until(all_sent, timeout=120, what="all 30 deliveries sent")  # the two minutes' bound
        finally:
            stop_worker(second)
            forget_queued_tasks()  # the dead worker's unacknowledged task would come back in a later test
    keys = collections.Counter(r["headers"]["Idempotency-Key"] for r in receiver.requests)
    assert set(keys) == {d.idempotency_key for d in deliveries}  # none lost
    duplicates = {key: count for key, count in keys.items() if count > 1}
    # Exactly the message the dead worker had handed over, twice, with the same key.
    assert duplicates == {receiver.requests[9]["headers"]["Idempotency-Key"]: 2}, duplicates
    assert len(receiver.requests) == BURST + 1
