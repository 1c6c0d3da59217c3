"""Rule evaluation through the real ingest path: delays, deadband, idempotency, flood."""

import pytest

from alerts.models import Alarm, AlarmEvent, Delivery, RuleState
from alerts.services.evaluation import rules_evaluate
from alerts.services.timers import alarm_timers_run
from alerts.tests.factories import at, make_channel, make_route, make_rule, post_readings

pytestmark = pytest.mark.django_db


def kinds(alarm) -> list[str]:
    return list(alarm.events.order_by("pk").values_list("kind", flat=True))


def ingest(capture, device, *samples, **kwargs):
    with capture(execute=True):
        post_readings(device, *samples, **kwargs)


def test_raises_one_alarm_when_value_crosses_threshold(django_capture_on_commit_callbacks, plant_a, press):
    rule = make_rule(plant_a, threshold=80)
    ingest(django_capture_on_commit_callbacks, press, (0, 70), (1, 85), (2, 90))
    alarm = Alarm.objects.get()
    assert (alarm.rule, alarm.device, alarm.state, alarm.value) == (rule, press, Alarm.State.ACTIVE_UNACK, 85.0)
    assert alarm.raised_at == at(1)
    assert kinds(alarm) == ["raised"]


def test_changes_nothing_when_the_same_readings_are_evaluated_twice(django_capture_on_commit_callbacks, plant_a, press):
    make_rule(plant_a, threshold=80)
    ingest(django_capture_on_commit_callbacks, press, (0, 85), (1, 70))
    before = list(AlarmEvent.objects.values_list("pk", "kind"))
    state = RuleState.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert rules_evaluate(device_ids=[press.pk], start=at(0), end=at(1)) == 0
    assert list(AlarmEvent.objects.values_list("pk", "kind")) == before
    state_after = RuleState.objects.get()
    assert (state_after.status, state_after.last_ts) == (state.status, state.last_ts)


def test_waits_for_on_delay_and_fires_from_the_timer_without_new_readings(
    django_capture_on_commit_callbacks, plant_a, press
):
    make_rule(plant_a, threshold=80, on_delay=60)
    ingest(django_capture_on_commit_callbacks, press, (0, 85), (30, 86))
    assert not Alarm.objects.exists()
    assert RuleState.objects.get().status == RuleState.Status.PENDING
    with django_capture_on_commit_callbacks(execute=True):
        alarm_timers_run(now=at(59))
    assert not Alarm.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        alarm_timers_run(now=at(61))
    assert Alarm.objects.get().raised_at == at(60)


def test_does_not_raise_when_condition_ends_before_on_delay(django_capture_on_commit_callbacks, plant_a, press):
    make_rule(plant_a, threshold=80, on_delay=60)
    ingest(django_capture_on_commit_callbacks, press, (0, 85), (30, 70))
    with django_capture_on_commit_callbacks(execute=True):
        alarm_timers_run(now=at(600))
    assert not Alarm.objects.exists()


def test_stays_active_inside_the_deadband_and_clears_past_it(django_capture_on_commit_callbacks, plant_a, press):
    make_rule(plant_a, threshold=80, clear_threshold=75)
    ingest(django_capture_on_commit_callbacks, press, (0, 85), (1, 78), (2, 76))
    assert Alarm.objects.get().state == Alarm.State.ACTIVE_UNACK
    ingest(django_capture_on_commit_callbacks, press, (3, 74))
    alarm = Alarm.objects.get()
    assert (alarm.state, alarm.cleared_at) == (Alarm.State.CLEARED_UNACK, at(3))
    assert kinds(alarm) == ["raised", "cleared"]


def test_clears_only_after_off_delay(django_capture_on_commit_callbacks, plant_a, press):
    make_rule(plant_a, threshold=80, off_delay=30)
    ingest(django_capture_on_commit_callbacks, press, (0, 85), (10, 70), (20, 85), (25, 70))
    assert Alarm.objects.get().state == Alarm.State.ACTIVE_UNACK
    with django_capture_on_commit_callbacks(execute=True):
        alarm_timers_run(now=at(56))
    assert Alarm.objects.get().cleared_at == at(55)


def test_returns_to_active_when_it_goes_abnormal_again_before_acknowledgement(
    django_capture_on_commit_callbacks, plant_a, press
):
    make_rule(plant_a, threshold=80)
    ingest(django_capture_on_commit_callbacks, press, (0, 85), (1, 70), (2, 90))
    alarm = Alarm.objects.get()
    assert alarm.state == Alarm.State.ACTIVE_UNACK
    assert kinds(alarm) == ["raised", "cleared", "returned"]


def test_raises_state_alarm_when_machine_is_down_longer_than_the_delay(
    django_capture_on_commit_callbacks, plant_a, press
):
    make_rule(plant_a, metric="", condition="state", threshold=None, state="down", on_delay=120, severity="critical")
    ingest(django_capture_on_commit_callbacks, press, state_samples=[(0, "running"), (10, "down")])
    with django_capture_on_commit_callbacks(execute=True):
        alarm_timers_run(now=at(100))
    assert not Alarm.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        alarm_timers_run(now=at(131))
    alarm = Alarm.objects.get()
    assert (alarm.severity, alarm.raised_at) == ("critical", at(130))
    ingest(django_capture_on_commit_callbacks, press, state_samples=[(200, "running")])
    assert Alarm.objects.get().state == Alarm.State.CLEARED_UNACK


def test_raises_on_rate_of_change_per_minute(django_capture_on_commit_callbacks, plant_a, press):
    make_rule(plant_a, condition="rate", threshold=10)  # more than 10 degrees per minute
    ingest(django_capture_on_commit_callbacks, press, (0, 20), (60, 25), (90, 40))
    alarm = Alarm.objects.get()
    assert alarm.raised_at == at(90)
    assert alarm.value == pytest.approx(30.0)


def test_raises_no_data_alarm_when_a_device_falls_silent(django_capture_on_commit_callbacks, plant_a, press):
    make_rule(plant_a, condition="no_data", threshold=None, no_data_seconds=300)
    ingest(django_capture_on_commit_callbacks, press, (0, 50))
    with django_capture_on_commit_callbacks(execute=True):
        alarm_timers_run(now=at(200))
        assert not Alarm.objects.exists()
        alarm_timers_run(now=at(400))
        alarm_timers_run(now=at(500))
    assert Alarm.objects.get().raised_at == at(300)
    ingest(django_capture_on_commit_callbacks, press, (600, 50))
    with django_capture_on_commit_callbacks(execute=True):
        alarm_timers_run(now=at(601))
    assert Alarm.objects.get().state == Alarm.State.CLEARED_UNACK


def test_ignores_devices_out_of_scope(django_capture_on_commit_callbacks, plant_a, press, line_a):
    from devices.tests.factories import make_device

    other = make_device(line_a, "press-02", model="HP-630")
    make_rule(plant_a, device_model="HP-630")
    make_rule(plant_a, scope="device", device=other, name="Only press-02")
    ingest(django_capture_on_commit_callbacks, press, (0, 99))
    assert not Alarm.objects.exists()
    ingest(django_capture_on_commit_callbacks, other, (0, 99))
    assert Alarm.objects.filter(device=other).count() == 2


def test_floods_of_ten_thousand_breaching_readings_make_one_alarm_and_one_notification(
    django_capture_on_commit_callbacks, plant_a, press, smtp_server
):
    make_rule(plant_a, threshold=80)
    make_route(make_channel(plant_a, "email"))
    for batch in range(10):
        samples = [(batch * 100 + n / 10, 90 + n % 7) for n in range(1000)]
        ingest(django_capture_on_commit_callbacks, press, *samples)
    assert Alarm.objects.count() == 1
    assert AlarmEvent.objects.count() == 1
    assert Delivery.objects.get().status == Delivery.Status.SENT
    assert len(smtp_server.messages) == 1


def test_raises_state_alarm_on_a_later_message_when_the_state_held_past_the_delay(
    django_capture_on_commit_callbacks, plant_a, press
):
    make_rule(plant_a, metric="", condition="state", threshold=None, state="down", on_delay=120)
    ingest(django_capture_on_commit_callbacks, press, state_samples=[(0, "down")])
    ingest(django_capture_on_commit_callbacks, press, (60, 20.0))
    assert not Alarm.objects.exists()
    ingest(django_capture_on_commit_callbacks, press, (125, 20.0))  # still down: states are stored on change only
    assert Alarm.objects.get().raised_at == at(125)


def test_raises_outside_the_band_and_clears_only_inside_the_clear_band(
    django_capture_on_commit_callbacks, plant_a, press
):
    make_rule(
        plant_a, condition="outside", threshold=40, threshold_high=60, clear_threshold=42, clear_threshold_high=58
    )
    ingest(django_capture_on_commit_callbacks, press, (0, 50), (1, 61), (2, 59))
    assert Alarm.objects.get().state == Alarm.State.ACTIVE_UNACK
    ingest(django_capture_on_commit_callbacks, press, (3, 57))
    assert Alarm.objects.get().state == Alarm.State.CLEARED_UNACK
    ingest(django_capture_on_commit_callbacks, press, (4, 39))
    assert Alarm.objects.get().state == Alarm.State.ACTIVE_UNACK


def test_evaluates_group_scoped_rules_for_members_only(django_capture_on_commit_callbacks, plant_a, press, line_a):
    from devices.tests.factories import make_device, make_group

    outside = make_device(line_a, "press-09")
    make_rule(plant_a, scope="group", group=make_group(plant_a, "Presses", devices=[press]))
    ingest(django_capture_on_commit_callbacks, press, (0, 99))
    ingest(django_capture_on_commit_callbacks, outside, (0, 99))
    assert list(Alarm.objects.values_list("device__uid", flat=True)) == ["press-01"]
