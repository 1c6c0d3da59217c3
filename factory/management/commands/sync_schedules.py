"""Create or update the Celery beat schedules by name (never delete-and-recreate).

Each app declares its periodic tasks in ``<app>/schedules.py`` (``factory.beat.installed_schedules``
gathers them). Operators may change an interval or disable a task in the admin (django-celery-beat);
running this again keeps their ``enabled`` choice and only restores the task name, interval and queue.
"""

from django.core.management.base import BaseCommand
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from factory.beat import installed_schedules


class Command(BaseCommand):
    help = "Upsert the periodic tasks Celery beat runs, as each installed app declares them (idempotent)."

    def handle(self, *args, **options):
        for schedule in installed_schedules():
            interval, _ = IntervalSchedule.objects.get_or_create(every=schedule.every, period=IntervalSchedule.SECONDS)
            _, created = PeriodicTask.objects.update_or_create(
                name=schedule.name, defaults={"task": schedule.task, "interval": interval, "crontab": None}
            )
            self.stdout.write(f"{'created' if created else 'updated'}: {schedule.name} (every {schedule.every}s)")
