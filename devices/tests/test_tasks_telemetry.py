"""Beat-driven housekeeping: offline marking (one event per change) and schedule upserts."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from devices.models import Device, TelemetryRollup1m
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.status import devices_mark_offline
from devices.services.telemetry_payload import Message
from devices.signals import device_status_changed
from devices.tasks import mark_offline_devices, refresh_rollups
from devices.tests.factories import make_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def status_events():
    events = []

    def receiver(sender, device_ids, online, at, **kwargs):
        events.append((sorted(device_ids), online))

    device_status_changed.connect(receiver)
    yield events
    device_status_changed.disconnect(receiver)


def _report(device, at):
    telemetry_store(
        [IngestItem(device=device, messages=[Message(ts=at, values={"t": 1.0}, state=None)])], received_at=at
    )


def test_marks_device_offline_once_when_silent_for_three_intervals(status_events, django_capture_on_commit_callbacks):
    now = timezone.now()
    quiet = make_device(expected_interval=10)
    chatty = make_device(expected_interval=10)
    with django_capture_on_commit_callbacks(execute=True):
        _report(quiet, now - timedelta(seconds=31))
        _report(chatty, now - timedelta(seconds=29))
    assert status_events == [([quiet.pk], True), ([chatty.pk], True)]
    with django_capture_on_commit_callbacks(execute=True):
        assert devices_mark_offline(now=now) == [quiet.pk]
    with django_capture_on_commit_callbacks(execute=True):
        assert devices_mark_offline(now=now) == []  # idempotent: no second event
    assert status_events[-1] == ([quiet.pk], False)
    assert len(status_events) == 3
    assert not Device.objects.get(pk=quiet.pk).online
    assert Device.objects.get(pk=chatty.pk).online


def test_reports_online_again_when_an_offline_device_sends(status_events, django_capture_on_commit_callbacks):
    now = timezone.now()
    device = make_device(expected_interval=5)
    with django_capture_on_commit_callbacks(execute=True):
        _report(device, now - timedelta(minutes=5))
        devices_mark_offline(now=now - timedelta(seconds=1))
        device.refresh_from_db()
        _report(device, now)
    assert status_events == [([device.pk], True), ([device.pk], False), ([device.pk], True)]


def test_task_wrappers_call_their_services_when_run_by_a_worker():
    now = timezone.now()
    device = make_device(expected_interval=1)
    _report(device, now - timedelta(minutes=2))
    assert refresh_rollups.apply().get() == 1
    assert TelemetryRollup1m.objects.filter(device_id=device.pk).count() == 1
    assert mark_offline_devices.apply().get() == 1


def test_upserts_schedules_by_name_and_keeps_an_operator_s_disable_when_run_twice():
    call_command("sync_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    names = set(PeriodicTask.objects.values_list("name", flat=True))
    assert {"Telemetry: refresh rollups", "Devices: mark offline", "Telemetry: enforce retention"} <= names
    PeriodicTask.objects.filter(name="Telemetry: enforce retention").update(enabled=False)
    first_ids = dict(PeriodicTask.objects.values_list("name", "id"))
    call_command("sync_schedules", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert dict(PeriodicTask.objects.values_list("name", "id")) == first_ids
    assert not PeriodicTask.objects.get(name="Telemetry: enforce retention").enabled


def test_purges_old_dead_letters_when_the_beat_task_runs(settings):
    from devices.models import DeadLetter
    from devices.tasks import purge_dead_letters

    settings.DEAD_LETTER_RETENTION_DAYS = 14
    now = timezone.now()
    old = DeadLetter.objects.create(received_at=now - timedelta(days=15), transport="mqtt", payload="x", reason="r")
    recent = DeadLetter.objects.create(received_at=now - timedelta(days=13), transport="mqtt", payload="y", reason="r")
    assert purge_dead_letters.apply().get() == 1
    assert list(DeadLetter.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not DeadLetter.objects.filter(pk=old.pk).exists()
