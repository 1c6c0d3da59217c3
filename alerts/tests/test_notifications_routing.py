"""Routing, grouping, escalation, repeats, shelving and mutes (real SMTP server, controlled clocks)."""

import pytest

from accounts.roles import Role
from alerts.models import Alarm, AlarmEvent, Delivery, NotificationChannel, NotificationMute
from alerts.services.alarms import alarm_acknowledge, alarm_shelve
from alerts.services.timers import alarm_timers_run
from alerts.tests.factories import at, make_channel, make_route, make_rule, post_readings
from devices.tests.factories import make_device, make_user
from tests.mail import body_text, parsed

pytestmark = pytest.mark.django_db


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


def test_sends_nothing_and_keeps_the_channel_ok_when_the_only_recipient_muted(
    run, plant_a, press, operator, smtp_server
):
    NotificationMute.objects.create(user=operator, device=press, until=at(3600))
    make_rule(plant_a)
    make_route(make_channel(plant_a, "email", {"to": []}), roles=[Role.OPERATOR])
    run(post_readings, press, (0, 99))
    assert smtp_server.messages == []
    assert Delivery.objects.get().status == Delivery.Status.SENT
    assert NotificationChannel.objects.get().status == NotificationChannel.Status.OK


def test_sends_nothing_for_a_suppressed_alarm(run, plant_a, press, plant_admin, smtp_server):
    from alerts.services.alarms import alarm_set_suppressed

    make_rule(plant_a, realarm_seconds=60)
    make_route(make_channel(plant_a, "email"))
    run(post_readings, press, (0, 99))
    run(alarm_set_suppressed, alarm=Alarm.objects.get(), by=plant_admin, suppressed=True, now=at(10))
    run(alarm_timers_run, now=at(600))
    assert len(smtp_server.messages) == 1
    assert not AlarmEvent.objects.filter(kind=AlarmEvent.Kind.REPEATED).exists()
