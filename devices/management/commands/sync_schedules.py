"""Create or update the Celery beat schedules by name (never delete-and-recreate).

Operators may change an interval or disable a task in the admin (django-celery-beat); running
this again keeps their ``enabled`` choice and only restores the task name, interval and queue.
"""

from django.core.management.base import BaseCommand
from django_celery_beat.models import IntervalSchedule, PeriodicTask

SCHEDULES = [
    # name, task, every (seconds)
    ("Telemetry: refresh rollups", "devices.tasks.refresh_rollups", 10),
    ("Devices: mark offline", "devices.tasks.mark_offline_devices", 30),
    ("Telemetry: enforce retention", "devices.tasks.enforce_retention", 3600),
    ("MQTT: purge dead letters", "devices.tasks.purge_dead_letters", 86400),
    ("Alarms: delays, no-data, shelves, escalation, repeats", "alerts.tasks.run_alarm_timers", 5),
    ("Alarms: dispatch notifications", "alerts.tasks.dispatch_notifications", 10),
    ("Firmware: scheduled starts, update timeouts, stage checks", "firmware.tasks.run_rollout_timers", 30),
    ("OEE: shift, day and week reports", "analytics.tasks.run_oee_reports", 300),
]


class Command(BaseCommand):
    help = "Upsert the periodic tasks Celery beat runs (idempotent)."

    def handle(self, *args, **options):
        for name, task, seconds in SCHEDULES:
            interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period=IntervalSchedule.SECONDS)
            _, created = PeriodicTask.objects.update_or_create(
                name=name, defaults={"task": task, "interval": interval, "crontab": None}
            )
            self.stdout.write(f"{'created' if created else 'updated'}: {name} (every {seconds}s)")
