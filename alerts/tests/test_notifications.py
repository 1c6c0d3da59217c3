"""Notifications end to end inside one process: real SMTP (aiosmtpd) and HTTP servers, controlled clocks."""

import asyncio
import hashlib
import hmac
import json
import urllib.parse
from email import message_from_bytes

import pytest

from accounts.roles import Role
from alerts.models import Alarm, AlarmEvent, Delivery, NotificationChannel, NotificationMute
from alerts.services.alarms import alarm_acknowledge, alarm_shelve
from alerts.services.timers import alarm_timers_run
from alerts.tests.conftest import free_port
from alerts.tests.factories import at, make_channel, make_route, make_rule, post_readings
from devices.tests.factories import make_device, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(django_capture_on_commit_callbacks, clock):
    """Run ``fn`` at its ``now`` (the wall clock moves there too) and every on-commit callback it registers.

    Tasks run eagerly inline, so dispatch and delivery happen within the call.
    """

    def call(fn, *args, **kwargs):
        if "now" in kwargs:
            clock.move_to(kwargs["now"])
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call


def parsed(envelope):
    return message_from_bytes(envelope.content)


def body_text(message) -> str:
    parts = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    return parts[0].get_payload(decode=True).decode()


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


def test_groups_alarms_raised_together_into_one_digest(run, plant_a, press, line_a, smtp_server):
    others = [make_device(line_a, f"press-0{n}") for n in (2, 3)]
    make_rule(plant_a)
    make_route(make_channel(plant_a, "email"))
    from devices.services.ingest import IngestItem, telemetry_store
    from devices.services.telemetry_payload import Message

    items = [
        IngestItem(device=d, messages=[Message(ts=at(0), values={"temperature": 99.0}, state=None)])
        for d in [press, *others]
    ]
    run(telemetry_store, items, received_at=at(1))
    assert Alarm.objects.count() == 3
    assert len(smtp_server.messages) == 1
    message = parsed(smtp_server.messages[0])
    assert message["Subject"] == "[Plant A] 3 alarms (3 warning)"
    assert all(uid in body_text(message) for uid in ("press-01", "press-02", "press-03"))


def test_holds_a_second_alarm_for_the_next_window_when_the_channel_just_sent(
    run, plant_a, press, line_a, smtp_server, settings
):
    settings.NOTIFY_GROUP_WINDOW_SECONDS = 3600  # the second alarm certainly falls in the same window
    other = make_device(line_a, "press-02")
    make_rule(plant_a)
    make_route(make_channel(plant_a, "email"))
    run(post_readings, press, (0, 99))
    run(post_readings, other, (0, 99))
    assert len(smtp_server.messages) == 1
    waiting = Delivery.objects.get(status=Delivery.Status.PENDING)
    assert [e.alarm.device.uid for e in waiting.events.all()] == ["press-02"]


def test_signs_the_webhook_body_with_hmac_sha256(run, plant_a, press, http_server):
    secret = "s3cret-signing-key-123"
    make_rule(plant_a, name="Hot")
    make_route(make_channel(plant_a, "webhook", {"url": f"{http_server.url}/hook", "secret": secret}))
    run(post_readings, press, (0, 99))
    request = http_server.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    expected = hmac.new(
        secret.encode(), headers["x-factory-timestamp"].encode() + b"." + request["body"], hashlib.sha256
    )
    assert headers["x-factory-signature"] == f"sha256={expected.hexdigest()}"
    payload = json.loads(request["body"])
    assert (payload["plant"], payload["severity"], payload["alarms"][0]["device"]) == ("Plant A", "warning", "press-01")


def test_sends_sms_through_the_twilio_style_api_with_basic_auth(run, plant_a, press, http_server, settings):
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


def test_routes_only_the_severities_a_route_asks_for(run, plant_a, press, http_server, settings):
    settings.SMS_API_URL, settings.SMS_ACCOUNT_SID, settings.SMS_AUTH_TOKEN, settings.SMS_FROM = (
        http_server.url, "AC1", "t", "+49301",
    )  # fmt: skip
    make_rule(plant_a, severity="info")
    make_route(make_channel(plant_a, "sms", {"to": ["+4915112345678"]}), severities=["critical"])
    run(post_readings, press, (0, 99))
    assert http_server.requests == []
    assert not Delivery.objects.exists()


def test_retries_then_records_a_failed_delivery_when_smtp_is_down(run, plant_a, press, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # nothing listens there
    settings.NOTIFY_MAX_RETRIES = 2
    settings.CELERY_TASK_EAGER_PROPAGATES = False  # let eager mode run the retries inline
    from alerts.tasks import deliver_notification

    deliver_notification.max_retries = 2
    try:
        make_rule(plant_a)
        make_route(make_channel(plant_a, "email"))
        run(post_readings, press, (0, 99))
    finally:
        deliver_notification.max_retries = settings.NOTIFY_MAX_RETRIES
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 3)
    assert "SMTP unreachable" in delivery.error
    alarm = Alarm.objects.get()
    assert alarm.state == Alarm.State.ACTIVE_UNACK
    assert (
        NotificationChannel.objects.get().status == NotificationChannel.Status.OK
    )  # transient: not the channel's fault


def test_marks_the_channel_failing_and_tells_plant_admins_on_a_permanent_error(
    run, plant_a, press, plant_admin, http_server, smtp_server
):
    http_server.statuses = [404]
    make_rule(plant_a)
    make_route(make_channel(plant_a, "webhook", {"url": f"{http_server.url}/gone", "secret": "x" * 20}, name="Hook"))
    run(post_readings, press, (0, 99))
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == (Delivery.Status.FAILED, 1)
    channel = NotificationChannel.objects.get()
    assert channel.status == NotificationChannel.Status.FAILING
    assert "HTTP 404" in channel.last_error
    told = parsed(smtp_server.messages[0])
    assert smtp_server.messages[0].rcpt_tos == ["plantadmin@example.com"]
    assert told["Subject"] == "Notification channel 'Hook' is failing"


def test_escalates_after_the_delay_and_stops_once_acknowledged(run, plant_a, press, operator, smtp_server):
    manager = make_user("manager", plant=plant_a, role=Role.ADMIN)
    make_rule(plant_a, severity="critical")
    make_route(make_channel(plant_a, "email", {"to": []}, name="First"), roles=[Role.OPERATOR])
    make_route(make_channel(plant_a, "email", {"to": []}, name="Second"), users=[manager], delay_minutes=10)
    run(post_readings, press, (0, 99))
    assert [m.rcpt_tos for m in smtp_server.messages] == [["operator@example.com"]]
    run(alarm_timers_run, now=at(9 * 60))
    assert len(smtp_server.messages) == 1
    run(alarm_timers_run, now=at(10 * 60 + 1))
    assert smtp_server.messages[1].rcpt_tos == ["manager@example.com"]
    assert parsed(smtp_server.messages[1])["Subject"].startswith("Escalation: [CRITICAL]")
    run(alarm_timers_run, now=at(11 * 60))  # idempotent: one escalation per level
    assert len(smtp_server.messages) == 2


def test_cancels_escalation_when_acknowledged_before_the_delay(run, plant_a, press, operator, smtp_server):
    make_rule(plant_a)
    make_route(make_channel(plant_a, "email", {"to": []}, name="Second"), roles=[Role.OPERATOR], delay_minutes=5)
    run(post_readings, press, (0, 99))
    run(alarm_acknowledge, alarm=Alarm.objects.get(), by=operator, now=at(60))
    run(alarm_timers_run, now=at(3600))
    assert smtp_server.messages == []
    assert not AlarmEvent.objects.filter(kind=AlarmEvent.Kind.ESCALATED).exists()


def test_repeats_at_the_realarm_interval_while_unacknowledged(run, plant_a, press, operator, smtp_server, settings):
    make_rule(plant_a, realarm_seconds=600)
    make_route(make_channel(plant_a, "email"))
    run(post_readings, press, (0, 99))
    run(alarm_timers_run, now=at(599))
    run(alarm_timers_run, now=at(601))
    run(alarm_timers_run, now=at(700))
    subjects = [parsed(m)["Subject"] for m in smtp_server.messages]
    assert subjects == [
        "[WARNING] press-01: Rule " + subjects[0].split("Rule ")[1],
        "Still unacknowledged: " + subjects[0],
    ]
    run(alarm_acknowledge, alarm=Alarm.objects.get(), by=operator, now=at(800))
    run(alarm_timers_run, now=at(1300))
    assert len(smtp_server.messages) == 2


def test_sends_nothing_for_a_shelved_alarm_and_unshelves_it_on_time(run, plant_a, press, operator, smtp_server):
    make_rule(plant_a, realarm_seconds=60)
    make_route(make_channel(plant_a, "email"))
    run(post_readings, press, (0, 99))
    alarm = Alarm.objects.get()
    run(alarm_shelve, alarm=alarm, by=operator, reason="Sensor being replaced", minutes=30, now=at(10))
    run(alarm_timers_run, now=at(20 * 60))
    assert len(smtp_server.messages) == 1
    run(alarm_timers_run, now=at(31 * 60))
    alarm.refresh_from_db()
    assert alarm.shelved_until is None
    assert list(alarm.events.values_list("kind", flat=True))[-2:] == ["unshelved", "repeated"]


def test_leaves_out_a_user_who_muted_the_device(run, plant_a, press, operator, smtp_server):
    other_operator = make_user("op2", plant=plant_a, role=Role.OPERATOR)
    NotificationMute.objects.create(user=operator, device=press, until=at(3600))
    make_rule(plant_a)
    make_route(make_channel(plant_a, "email", {"to": []}), roles=[Role.OPERATOR])
    run(post_readings, press, (0, 99))
    assert smtp_server.messages[0].rcpt_tos == [other_operator.email]


def test_publishes_in_app_notification_and_alarm_events_on_the_plant_group(run, plant_a, press, settings):
    from asgiref.sync import async_to_sync
    from channels.layers import channel_layers, get_channel_layer

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends = {}
    layer = get_channel_layer()
    name = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"live.plant.{plant_a.pk}", name)
    make_rule(plant_a, name="Hot", action="Cool it")
    make_route(make_channel(plant_a, "inapp"))
    run(post_readings, press, (0, 99))

    async def drain():
        received = []
        while True:
            try:
                received.append((await asyncio.wait_for(layer.receive(name), 0.1))["event"])
            except TimeoutError:
                return received

    # The plant group also carries the dashboard's telemetry events: keep the alerts' kinds.
    events = [event for event in async_to_sync(drain)() if event["kind"] in ("alarm", "notification")]
    channel_layers.backends = {}
    alarm = Alarm.objects.get()
    assert events[0] == {
        "kind": "alarm", "id": alarm.pk, "device_id": press.pk, "plant_id": plant_a.pk, "rule": "Hot",
        "severity": "warning", "state": "active_unack", "shelved": False, "message": "press-01: Hot (value 99)",
        "action": "Cool it", "value": 99.0, "raised_at": "2026-11-26T08:00:00Z", "acknowledged_at": None,
    }  # fmt: skip
    assert events[1] == {
        "kind": "notification", "severity": "warning", "title": "[WARNING] press-01: Hot",
        "body": events[1]["body"], "alarm_id": alarm.pk,
    }  # fmt: skip
    assert "press-01: Hot" in events[1]["body"]
