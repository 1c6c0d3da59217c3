"""End to end with a real Celery worker on Redis and MariaDB (skipped on the embedded default).

A reading posted to the HTTP ingest endpoint → the worker evaluates the rule and raises the alarm
→ the e-mail arrives at a real aiosmtpd server → an operator acknowledges through the API → the
escalation that was due later never happens.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.roles import Role
from alerts.models import Alarm, AlarmEvent, Delivery
from alerts.services.timers import alarm_timers_run
from alerts.tests.factories import make_channel, make_route, make_rule
from conftest import assert_status
from devices.tests.factories import make_device, make_line, make_token, make_user
from tests.waiting import wait_until

# A hang (e.g. a lock left by a dying worker) fails in 2 minutes, not at the 5-minute default.
pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def test_reading_raises_alarm_mails_it_and_acknowledgement_cancels_escalation(worker, smtp_server):
    from devices.tests.factories import make_plant

    plant = make_plant("E2E Plant")
    press = make_device(make_line(plant, "Line"), "press-e2e")
    operator = make_user("op-e2e", plant=plant, role=Role.OPERATOR)
    manager = make_user("mgr-e2e", plant=plant, role=Role.ADMIN)
    make_rule(plant, name="Oil temperature high", severity="critical", threshold=80, action="Stop the press.")
    make_route(make_channel(plant, "email", {"to": []}, name="Shift"), roles=[Role.OPERATOR])
    make_route(make_channel(plant, "email", {"to": []}, name="Managers"), users=[manager], delay_minutes=15)
    _, token = make_token(press)

    body = '{"values": {"temperature": 93.5}}'
    response = Client().post(
        "/api/v1/telemetry/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Device {token}"
    )
    assert_status(response, 202)

    alarm = wait_until(lambda: Alarm.objects.filter(device=press).first(), what="the alarm")
    assert (alarm.state, alarm.value, alarm.severity) == (Alarm.State.ACTIVE_UNACK, 93.5, "critical")
    envelope = wait_until(lambda: smtp_server.messages[:1], what="the e-mail")[0]
    assert envelope.rcpt_tos == ["op-e2e@example.com"]
    assert b"[CRITICAL] press-e2e: Oil temperature high" in envelope.content
    wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.SENT).exists(), what="the sent delivery")

    client = Client()
    client.force_login(operator)
    acked = assert_status(
        client.post(f"/api/v1/alarms/{alarm.pk}/acknowledge/", {}, content_type="application/json"), 200
    )
    assert acked.json()["state"] == "active_ack"

    later = timezone.now() + timedelta(minutes=20)
    assert alarm_timers_run(now=later)["escalated"] == 0
    assert not AlarmEvent.objects.filter(kind=AlarmEvent.Kind.ESCALATED).exists()
    assert len(smtp_server.messages) == 1
