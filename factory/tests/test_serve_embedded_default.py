"""The embedded default as a newcomer runs it (`make run`): every periodic task runs and does its work.

``manage.py serve`` is started with the arguments of ``Procfile.dev``'s ``web`` line, in a fresh
process, on a fresh database, without a broker or Redis: Celery is eager and beat is a thread of
the web process. ``sync_schedules`` installs the schedules and an operator shortens them in the
database (as in the admin), so that the daily and hourly ones also come round. Every installed
periodic task must then show its effect: rollup rows for the readings posted over HTTP, a silent
device offline, an old reading and an old dead letter gone, a timed-out firmware update marked,
an expired shelve ended, the alarm outbox dispatched, an e-mail a dead worker left sending sent,
OEE reports written, a device command past its time-out expired, an audit entry past
AUDIT_RETENTION_DAYS removed.

Before beat ran its tasks through the worker's registry, the web process had never imported
``devices.tasks`` (nor ``firmware``'s or ``analytics``'s), so beat sent those tasks by name to the
in-memory broker where nothing consumed them: no rollups, no offline marking, no retention.
"""

import json
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.servers import run_python, seeded_stack

SHORT_INTERVAL = 2  # seconds: what the operator sets every schedule to

# Each task sync_schedules installs → the effects (keys of ``background_work()``) that prove it ran.
EFFECTS = {
    "devices.tasks.refresh_rollups": ["rollups_1m", "rollups_1h"],
    "devices.tasks.mark_offline_devices": ["silent_device_offline"],
    "devices.tasks.enforce_retention": ["old_reading_deleted"],
    "devices.tasks.purge_dead_letters": ["old_dead_letter_purged"],
    "alerts.tasks.run_alarm_timers": ["expired_shelve_ended"],
    "alerts.tasks.dispatch_notifications": ["alarm_outbox_dispatched"],
    "alerts.tasks.sweep_deliveries": ["stuck_delivery_sent"],
    "firmware.tasks.run_rollout_timers": ["silent_update_timed_out"],
    "analytics.tasks.run_oee_reports": ["oee_reports_written"],
    "commands.tasks.expire_commands": ["unanswered_command_expired"],
    "audit.tasks.purge_audit_entries": ["old_audit_entry_purged"],
}


def seed_background_work() -> dict:
    """Run in the server's database (``manage.py shell``): the e2e seed plus what each periodic task
    has to find; prints and returns the ids."""
    from django.utils import timezone

    from accounts.models import User
    from alerts.models import Alarm, AlarmEvent, AlertRule, Delivery
    from alerts.services.alarms import alarm_raise, alarm_shelve
    from alerts.tests.factories import make_channel
    from analytics.tests.factories import make_shift
    from audit.models import AuditEntry
    from audit.services import audit_record
    from commands.models import Command
    from commands.services import command_send
    from commands.tests.factories import make_catalogue
    from devices.models import DeadLetter, Device, Metric, Plant, TelemetryReading
    from firmware.models import RolloutTarget
    from firmware.services.rollouts import rollout_start
    from firmware.tests.factories import make_fleet, make_image, make_rollout
    from tests.e2e_seed import seed

    seeded = seed(devices=3, sensor=False)  # prints its JSON line; run_python reads the last one, ours
    now = timezone.now()
    plant = Plant.objects.get(pk=seeded["plants"]["A"])
    devices = seeded["devices"]
    # press-002 reports once in the test and then falls silent: offline after 3 expected intervals.
    Device.objects.filter(pk=devices["press-002"]["id"]).update(expected_interval=1)
    # A raw reading past the retention window (30 days by default).
    metric, _ = Metric.objects.get_or_create(name="temperature")
    old_ts = now - timedelta(days=40)
    TelemetryReading.objects.create(device_id=devices["press-001"]["id"], metric=metric, ts=old_ts, value=20.5)
    # A dead letter past DEAD_LETTER_RETENTION_DAYS (14 by default).
    letter = DeadLetter.objects.create(
        received_at=now - timedelta(days=30), transport="mqtt", topic="factory/devices/ghost/telemetry",
        device_uid="ghost", payload="{", reason="invalid JSON",
    )  # fmt: skip
    # An alarm shelved by an operator whose shelve has run out; its SHELVED event waits in the outbox.
    rule = AlertRule.objects.get(plant=plant, name="Vibration high")
    alarm = alarm_raise(rule=rule, device=Device.objects.get(uid="press-003"), value=9.0, at=now)
    operator = User.objects.get(username="operator")
    alarm_shelve(alarm=alarm, by=operator, reason="Bearing on order", minutes=5, now=now)
    Alarm.objects.filter(pk=alarm.pk).update(shelved_until=now - timedelta(seconds=1))
    waiting = list(AlarmEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True))
    # An e-mail a worker claimed an hour ago and died sending: left ``sending`` for the sweeper.
    stuck = Delivery.objects.create(
        channel=make_channel(plant, "email"), plant=plant, key="left-by-a-dead-worker", attempts=1,
        status=Delivery.Status.SENDING, scheduled_at=now - timedelta(hours=1), claimed_at=now - timedelta(hours=1),
    )  # fmt: skip
    stuck.events.add(AlarmEvent.objects.filter(alarm=alarm).first())
    # A firmware update whose device stopped answering longer ago than FIRMWARE_UPDATE_TIMEOUT.
    [(device, _token)] = make_fleet(plant, 1, prefix="ota")
    rollout = make_rollout(plant, make_image(plant, "2.0.0"), devices=[device])
    rollout_start(rollout=rollout)
    targets = RolloutTarget.objects.filter(rollout=rollout)
    targets.update(progress_at=now - timedelta(hours=2))
    # Shifts every day: yesterday's closed shifts are due for their OEE report.
    make_shift(plant, "Early", "06:00", "14:00")
    # A command its device never answered, past its time-out.
    make_catalogue()
    command = command_send(device=Device.objects.get(uid="press-001"), name="reset_counter", params={}, by=operator)
    Command.objects.filter(pk=command.pk).update(expires_at=now - timedelta(seconds=1))
    # An audit entry past AUDIT_RETENTION_DAYS (365 by default).
    old_entry = audit_record(event="login", obj=operator, actor=operator)
    AuditEntry.objects.filter(pk=old_entry.pk).update(timestamp=now - timedelta(days=400))
    data = {
        **seeded,
        "old_reading": {"device": devices["press-001"]["id"], "metric": metric.pk, "ts": old_ts.isoformat()},
        "dead_letter": letter.pk,
        "old_audit_entry": old_entry.pk,
        "alarm": alarm.pk,
        "outbox": waiting,
        "stuck_delivery": stuck.pk,
        "targets": list(targets.values_list("pk", flat=True)),
        "target_statuses": sorted(set(targets.values_list("status", flat=True))),
        "command": command.pk,
        "command_state": Command.objects.get(pk=command.pk).state,
    }
    print(json.dumps(data))
    return data


def background_work(seeded: dict, timeout: float) -> dict:
    """Run in the server's database: poll until every effect shows or ``timeout`` s pass; print and
    return each effect (True/False) and each periodic task's run count."""
    from django.db import close_old_connections
    from django_celery_beat.models import PeriodicTask

    from alerts.models import Alarm, AlarmEvent, Delivery
    from analytics.models import OEEReport
    from audit.models import AuditEntry
    from commands.models import Command
    from devices.models import DeadLetter, Device, TelemetryReading, TelemetryRollup1h, TelemetryRollup1m
    from firmware.models import RolloutTarget

    devices = seeded["devices"]
    reporting = [devices["press-001"]["id"], devices["press-002"]["id"]]
    old = seeded["old_reading"]

    def effects() -> dict:
        return {
            "rollups_1m": TelemetryRollup1m.objects.filter(device_id__in=reporting).exists(),
            "rollups_1h": TelemetryRollup1h.objects.filter(device_id__in=reporting).exists(),
            "silent_device_offline": Device.objects.filter(
                pk=devices["press-002"]["id"], online=False, last_seen_at__isnull=False
            ).exists(),
            "old_reading_deleted": not TelemetryReading.objects.filter(
                device_id=old["device"], metric_id=old["metric"], ts=datetime.fromisoformat(old["ts"])
            ).exists(),
            "old_dead_letter_purged": not DeadLetter.objects.filter(pk=seeded["dead_letter"]).exists(),
            "expired_shelve_ended": Alarm.objects.filter(pk=seeded["alarm"], shelved_until__isnull=True).exists(),
            "alarm_outbox_dispatched": bool(seeded["outbox"])
            and not AlarmEvent.objects.filter(processed_at__isnull=True).exists(),
            "stuck_delivery_sent": Delivery.objects.filter(pk=seeded["stuck_delivery"], status="sent").exists(),
            "silent_update_timed_out": bool(seeded["targets"])
            and not RolloutTarget.objects.filter(pk__in=seeded["targets"]).exclude(status="timed_out").exists(),
            "oee_reports_written": OEEReport.objects.filter(plant_id=seeded["plants"]["A"]).exists(),
            "unanswered_command_expired": Command.objects.filter(pk=seeded["command"], state="expired").exists(),
            "old_audit_entry_purged": not AuditEntry.objects.filter(pk=seeded["old_audit_entry"]).exists(),
        }

    deadline = time.monotonic() + timeout
    while True:
        close_old_connections()
        found = effects()
        if all(found.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    runs = dict(PeriodicTask.objects.exclude(task__startswith="celery.").values_list("task", "total_run_count"))
    result = {"effects": found, "runs": runs}
    print(json.dumps(result))
    return result


@pytest.fixture
def make_run(tmp_path):
    """The web process of `make run` (Procfile.dev) on a fresh database, with the embedded default's
    environment, after ``sync_schedules`` and an operator's shorter intervals."""
    seed = "from factory.tests.test_serve_embedded_default import seed_background_work; seed_background_work()"
    shorten = (
        "from django_celery_beat.models import IntervalSchedule, PeriodicTask\n"
        f"every, _ = IntervalSchedule.objects.get_or_create(every={SHORT_INTERVAL}, period='seconds')\n"
        "for task in PeriodicTask.objects.exclude(task__startswith='celery.'):\n"
        "    task.interval = every\n"
        "    task.save()\n"  # as the admin saves it
    )
    env = {"CELERY_BROKER_URL": None, "REDIS_URL": None, "MQTT_URL": None}
    prepare = [("sync_schedules",), ("shell", "-c", shorten)]
    with seeded_stack(tmp_path, seed, env=env, prepare=prepare, embedded=True) as (server, seeded):
        yield server, seeded


def post(server, token: str, values: dict) -> None:
    body = {"ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "values": values}
    response = httpx.post(f"{server.url}/api/v1/telemetry/", json=body, headers={"Authorization": f"Device {token}"})
    assert response.status_code == 202, response.text


def test_every_periodic_task_of_sync_schedules_runs_and_does_its_work_in_the_embedded_default(make_run):
    server, seeded = make_run
    assert seeded["outbox"] and seeded["targets"], seeded  # the preconditions hold before the server runs
    assert "timed_out" not in seeded["target_statuses"], seeded
    assert seeded["command_state"] == "pending", seeded
    devices = seeded["devices"]
    for value in (61.5, 62.0, 62.5):
        post(server, devices["press-001"]["token"], {"temperature": value})
    post(server, devices["press-002"]["token"], {"temperature": 58.0})  # and then it falls silent

    code = (
        "import json; from factory.tests.test_serve_embedded_default import background_work; "
        f"background_work(json.loads({json.dumps(seeded)!r}), timeout=60)"
    )
    result = run_python(server.env, code)
    installed = set(result["runs"])
    assert installed == set(EFFECTS), f"sync_schedules installs {sorted(installed)}; this test checks {sorted(EFFECTS)}"
    missing = {task: [e for e in effects if not result["effects"][e]] for task, effects in EFFECTS.items()}
    missing = {task: effects for task, effects in missing.items() if effects}
    assert not missing, (
        f"periodic tasks without effect after 60 s: {missing}; run counts: {result['runs']}; "
        f"server log: {server.log_tail()}"
    )
