"""A full rollout with a real Celery worker on MariaDB + Redis, real Mosquitto and a real aiosmtpd
server (skipped on the embedded default; fails under REQUIRE_SERVICES=1).

Stage 1 succeeds → the worker opens stage 2 and the devices are told over MQTT; failures beyond
the error threshold → auto-pause and an e-mail to the plant admin; resume → completion; rollback
→ the devices are back on their previous version.
"""

import threading
from urllib.parse import urlsplit

import orjson
import pytest
from django.test import Client

from accounts.roles import Role
from conftest import assert_status, require_service
from devices.tests.factories import make_user
from firmware.models import Rollout
from firmware.tests.factories import django_requester, make_fleet, make_image
from simulator.firmware import OtaDevice
from tests.waiting import wait_until

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True), pytest.mark.timeout(180)]


class CommandListener:
    """Subscribes to every device's command topic on the real broker and records the frames."""

    def __init__(self, url: str):
        import paho.mqtt.client as mqtt

        self.frames, self.ready = [], threading.Event()
        parts = urlsplit(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: c.subscribe("factory/devices/+/commands", qos=1)
        self.client.on_subscribe = lambda *a: self.ready.set()
        self.client.on_message = lambda c, u, m: self.frames.append((m.topic, orjson.loads(m.payload)))
        self.client.connect(parts.hostname, parts.port or 1883)
        self.client.loop_start()
        assert self.ready.wait(10), "no SUBACK from the broker"

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def test_staged_rollout_pauses_mails_resumes_completes_and_rolls_back(worker, smtp_server, plant_a):
    mqtt_url = require_service("MQTT_URL")
    listener = CommandListener(mqtt_url)
    operator = make_user("op-ota", plant=plant_a, role=Role.OPERATOR)
    make_user("boss-ota", plant=plant_a, role=Role.ADMIN)
    fleet = make_fleet(plant_a, 6)
    make_image(plant_a, "1.0.0")
    image = make_image(plant_a, "2.0.0")
    request = django_requester()
    devices = [OtaDevice(uid=d.uid, token=t, request=request, version="1.0.0", piece=65_536) for d, t in fleet]
    api = Client()
    api.force_login(operator)
    body = {"plant": plant_a.pk, "name": "Spring", "image": image.pk, "stages": [1, "100%"], "error_threshold": 20}
    rollout_id = assert_status(api.post("/api/v1/rollouts/", body, content_type="application/json"), 201).json()["id"]
    assert_status(api.post(f"/api/v1/rollouts/{rollout_id}/start/", {}, content_type="application/json"), 200)
    rollout = Rollout.objects.get(pk=rollout_id)

    def offered():
        return [d for d in devices if d.poll()]

    try:
        first = wait_until(offered, what="stage 1 notified")
        assert [d.uid for d in first] == [devices[0].uid]
        wait_until(
            lambda: any(t.endswith(f"{devices[0].uid}/commands") for t, _ in listener.frames), what="MQTT command"
        )
        assert devices[0].update() == "succeeded"

        # The worker opens stage 2: the five others are offered the update.
        second = wait_until(lambda: len(offered()) == 5 and offered(), what="stage 2 notified")
        second[0].failure_rate = second[1].failure_rate = 1.0
        assert [d.update() for d in second[:2]] == ["failed", "failed"]  # 2 of 5 = 40% > 20%
        wait_until(lambda: Rollout.objects.get(pk=rollout_id).state == "paused", what="auto-pause")
        envelope = wait_until(lambda: smtp_server.messages[:1], what="the pause e-mail")[0]
        assert envelope.rcpt_tos == ["boss-ota@example.com"]
        assert b"Rollout paused: Spring" in envelope.content

        assert_status(api.post(f"/api/v1/rollouts/{rollout_id}/resume/", {}, content_type="application/json"), 200)
        assert [d.update() for d in second[2:]] == ["succeeded"] * 3
        wait_until(lambda: Rollout.objects.get(pk=rollout_id).state == "completed", what="completion")

        response = api.post(f"/api/v1/rollouts/{rollout_id}/rollback/", {}, content_type="application/json")
        reverse_id = assert_status(response, 201).json()["id"]
        back = wait_until(lambda: len(offered()) == 4 and offered(), what="rollback notified")
        assert [d.update() for d in back] == ["succeeded"] * 4
        wait_until(lambda: Rollout.objects.get(pk=reverse_id).state == "completed", what="rollback completed")
        for device, _ in fleet:
            device.refresh_from_db()
        # The four updated ones went back; the two failed installs never left 1.0.0.
        assert [d.firmware_version for d, _ in fleet] == ["1.0.0"] * 6
        actions = list(rollout.events.values_list("action", flat=True))
        assert actions == ["created", "started", "stage_started", "auto_paused", "resumed", "completed", "rolled_back"]
    finally:
        listener.close()
