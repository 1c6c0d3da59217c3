"""A real Celery worker SIGKILLed while it pushes a rollout stage's firmware commands (issue 15
item 3; skipped on the embedded default): after a new worker starts and the beat runs, every
device has its command, the stage completes, no target is left notified, and the only duplicates
are the commands the dead worker had already delivered, each carrying the same ``update_id``.

The worker reaches the real Mosquitto through ``tests.mqtt.HoldingMqttProxy``, which lets the
batch's first three PUBLISH packets through and holds the rest: the worker is then in the middle
of its push, waiting for acknowledgements, when it is killed.
"""

import collections
import signal

import pytest
from django.test import Client

from conftest import assert_status, require_service
from firmware.models import Rollout, RolloutTarget
from firmware.services.rollouts import rollout_start
from firmware.tasks import run_rollout_timers
from firmware.tests.factories import make_fleet, make_image, make_rollout
from firmware.tests.test_tasks_worker import CommandListener
from tests.mqtt import HoldingMqttProxy
from tests.waiting import wait_until
from tests.worker import forget_queued_tasks, start_worker, stop_worker, worker_env

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]
FLEET = 8
DELIVERED_BEFORE_THE_KILL = 3


def test_every_device_gets_its_command_and_the_stage_completes_when_the_worker_dies_mid_push(plant_a, settings):
    mqtt_url = require_service("MQTT_URL")
    require_service("CELERY_BROKER_URL")
    require_service("DATABASE_URL")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.FIRMWARE_PUSH_STUCK_SECONDS = 2  # what the test's beat (this process) treats as left behind
    forget_queued_tasks()
    listener = CommandListener(mqtt_url)  # straight to the broker: what the devices receive
    proxy = HoldingMqttProxy(mqtt_url, allow=DELIVERED_BEFORE_THE_KILL)
    env = worker_env(MQTT_URL=proxy.url)
    fleet = make_fleet(plant_a, FLEET)
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=["100%"])
    try:
        # Up (answering ping) before the rollout is started: see alerts/tests/test_tasks_worker_crash.py.
        first = start_worker(env, purge=False, name="ota-crash-first@localhost")
        try:
            rollout_start(rollout=rollout)  # the worker notifies the stage and pushes the batch
            wait_until(lambda: len(listener.frames) >= DELIVERED_BEFORE_THE_KILL and proxy.held, timeout=30,
                       what="the push under way: 3 commands delivered, the rest held")  # fmt: skip
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        finally:
            stop_worker(first)
        delivered_first = {topic.split("/")[2] for topic, _frame in listener.frames}
        assert len(delivered_first) == DELIVERED_BEFORE_THE_KILL
        targets = RolloutTarget.objects.filter(rollout=rollout)
        assert set(targets.values_list("status", flat=True)) == {"notified"}
        proxy.allow = None  # the new worker's connections pass untouched

        second = start_worker(env, purge=False, name="ota-crash-second@localhost")
        try:

            def everyone_told():
                run_rollout_timers()  # this process plays beat
                return {topic.split("/")[2] for topic, _frame in listener.frames} == {d.uid for d, _ in fleet}

            wait_until(everyone_told, timeout=40, interval=0.5, what="a command for every device")
            for device, token in fleet:  # each device installs what it was told and says so
                update_id = next(f["update_id"] for t, f in listener.frames if t.split("/")[2] == device.uid)
                body = {"update_id": update_id, "status": "succeeded", "detail": "booted 2.0.0"}
                response = Client().post("/api/v1/device/firmware/status/", body, content_type="application/json",
                                         HTTP_AUTHORIZATION=f"Device {token}")  # fmt: skip
                assert_status(response, 200)
            wait_until(lambda: Rollout.objects.get(pk=rollout.pk).state == "completed", timeout=30,
                       what="the stage (and rollout) completed by the new worker")  # fmt: skip
        finally:
            stop_worker(second)
            forget_queued_tasks()  # the dead worker's unacknowledged task would come back in a later test
    finally:
        listener.close()
        proxy.close()

    assert set(targets.values_list("status", flat=True)) == {"succeeded"}  # no target stuck
    expected_ids = dict(targets.values_list("device__uid", "pk"))
    received = collections.Counter()
    for topic, frame in listener.frames:
        uid = topic.split("/")[2]
        assert (frame["type"], frame["update_id"]) == ("firmware_update", expected_ids[uid]), frame
        received[uid] += 1
    # Once each; twice (the same update_id) for exactly the devices the dead worker had reached.
    assert received == {uid: 2 if uid in delivered_first else 1 for uid in expected_ids}, received
