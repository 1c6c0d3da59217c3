"""The e-mail notifier against a real SMTP server (aiosmtpd): recipients, content, faults."""

import pytest

from accounts.roles import Role
from alerts.models import Alarm, Delivery, NotificationChannel
from alerts.tests.factories import make_channel, make_route, make_rule, post_readings
from tests.mail import body_text, parsed
from tests.servers import free_port

pytestmark = pytest.mark.django_db


def test_mails_the_route_roles_with_subject_and_action_when_an_alarm_is_raised(
    run, plant_a, press, operator, viewer, smtp_server
):
    make_rule(plant_a, name="Oil temperature high", severity="critical", action="Stop the press and call maintenance.")
    make_route(make_channel(plant_a, "email", {"to": []}), roles=[Role.OPERATOR])
    run(post_readings, press, (0, 95))
    envelope = smtp_server.messages[0]
    assert envelope.rcpt_tos == ["operator@example.com"]
    message = parsed(envelope)
    assert message["Subject"] == "[CRITICAL] press-01: Oil temperature high"
    assert "Stop the press and call maintenance." in body_text(message)
    assert any(p.get_content_type() == "text/html" for p in message.walk())
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.error) == (Delivery.Status.SENT, 1, "")
    assert delivery.duration_ms is not None


def test_retries_then_records_a_failed_delivery_when_smtp_is_down(run, plant_a, press, settings, max_retries):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there
    max_retries(2)
    make_rule(plant_a)
    make_route(make_channel(plant_a, "email"))
    run(post_readings, press, (0, 99))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 3)
    assert "SMTP unreachable" in delivery.error
    alarm = Alarm.objects.get()
    assert alarm.state == Alarm.State.ACTIVE_UNACK
    assert (
        NotificationChannel.objects.get().status == NotificationChannel.Status.OK
    )  # transient: not the channel's fault


def test_marks_the_channel_failing_when_every_recipient_is_refused(run, plant_a, press, smtp_server, plant_admin):
    smtp_server.refuse = {"gone@example.com"}
    make_rule(plant_a)
    make_route(make_channel(plant_a, "email", {"to": ["gone@example.com"]}, name="Old list"))
    run(post_readings, press, (0, 99))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 1)
    assert "gone@example.com" in delivery.error
    channel = NotificationChannel.objects.get()
    assert channel.status == NotificationChannel.Status.FAILING
    assert smtp_server.messages == []  # admins are told on the dashboard: their own channel kind is the broken one
    assert Alarm.objects.get().state == Alarm.State.ACTIVE_UNACK


def test_the_mail_links_to_the_alarm_in_its_plant_console_under_site_url(run, plant_a, press, smtp_server, settings):
    settings.SITE_URL = "http://factory.example:8100/"
    make_rule(plant_a, name="Oil temperature high")
    make_route(make_channel(plant_a, "email", {"to": ["oncall@example.com"]}))
    run(post_readings, press, (0, 95))
    message = parsed(smtp_server.messages[0])
    alarm = Alarm.objects.get()
    link = f"http://factory.example:8100/plants/{plant_a.pk}/alarms/#alarm-{alarm.pk}"
    assert link in body_text(message)
    html = next(p.get_payload(decode=True).decode() for p in message.walk() if p.get_content_type() == "text/html")
    assert f'href="{link}"' in html


def test_the_mail_shows_value_and_limit_with_unit_and_precision_and_times_in_the_plant_zone(run, press, smtp_server):
    from alerts.tests.factories import at
    from devices.services.ingest import IngestItem, telemetry_store
    from devices.services.telemetry_payload import Message

    press.plant.time_zone = "Europe/Berlin"
    press.plant.save()
    make_rule(press.plant, name="Vibration high", metric="vibration", threshold=0.06)
    make_route(make_channel(press.plant, "email", {"to": ["oncall@example.com"]}))
    reading = Message(ts=at(0), values={"vibration": 0.0634}, state=None)  # at(0) is 08:00 UTC, 09:00 in Berlin
    run(telemetry_store, [IngestItem(device=press, messages=[reading])], received_at=at(3600))

    message = parsed(smtp_server.messages[0])
    text = body_text(message)
    assert "press-01: Vibration high (value 0.063 mm/s, limit > 0.06 mm/s)" in text
    assert "raised 2026-11-26 09:00 (Europe/Berlin)" in text
    html = next(p.get_payload(decode=True).decode() for p in message.walk() if p.get_content_type() == "text/html")
    assert "<td>0.063 mm/s</td><td>&gt; 0.06 mm/s</td><td>2026-11-26 09:00</td>" in html
    assert "Raised (Europe/Berlin)" in html
