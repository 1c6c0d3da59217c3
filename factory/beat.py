"""Celery beat for every process that runs it: the worker's registry, loud failures, and the apps' schedules.

``celery.beat.Scheduler.apply_async`` looks a periodic task up in ``app.tasks``; when no module of
the process registered it, beat sends it by name to the broker instead. Celery imports the apps'
``tasks`` modules lazily (when a worker starts), so in the embedded default (eager Celery, the
``memory://`` broker, beat as a thread of ``manage.py serve``) the tasks whose module the web
process never imported went to a broker nobody reads, and silently never ran.

``FactoryScheduler`` (``CELERY_BEAT_SCHEDULER``, in ``serve`` and in ``celery beat``):

- imports every installed app's tasks at start, as a worker does (Celery's autodiscovery, forced);
- never sends a periodic task that no module registers: it logs an error naming it instead;
- logs a periodic task that failed when run eagerly, with its traceback;
- runs an interval schedule that has never run at its first tick (``FactoryEntry``), not one
  interval after it was created: a fresh `make run` sees its hourly and daily housekeeping at once.

Each app declares its periodic tasks in ``<app>/schedules.py`` (``SCHEDULES``, a list of
``Schedule``); ``installed_schedules()`` gathers them for ``manage.py sync_schedules``.
"""

import logging
from dataclasses import dataclass

from celery.beat import SchedulingError
from celery.result import EagerResult
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from factory.apps import installed_submodules

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """One periodic task as an app declares it: beat runs ``task`` every ``every`` seconds."""

    name: str  # shown in the admin (Periodic tasks); the key sync_schedules upserts by
    task: str  # dotted name of a Celery task of the app
    every: int  # seconds


def installed_schedules() -> list[Schedule]:
    """The ``SCHEDULES`` of every installed app's ``schedules`` module, in ``INSTALLED_APPS`` order."""
    return [schedule for module in installed_submodules("schedules") for schedule in getattr(module, "SCHEDULES", ())]


class FactoryEntry(ModelEntry):
    """A schedule row; an interval schedule that never ran is due at once (django-celery-beat would
    wait one interval from the row's last change, i.e. a day for a daily task on every fresh start)."""

    def __init__(self, model, app=None):
        never_run = model.last_run_at is None
        super().__init__(model, app=app)
        if never_run and model.interval_id is not None and model.start_time is None:
            self.last_run_at = model.last_run_at = self.last_run_at - self.schedule.run_every


class FactoryScheduler(DatabaseScheduler):
    """django-celery-beat's database scheduler that runs only registered tasks and says when one fails."""

    Entry = FactoryEntry

    def setup_schedule(self):
        self.app.autodiscover_tasks(force=True)  # every installed app's tasks.py, as a worker imports them
        super().setup_schedule()

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        if entry.task not in self.app.tasks:
            logger.error(
                "Periodic task %r names the task %r, which no installed app registers: it is NOT sent. "
                "Correct the task name in the admin (Periodic tasks) or run `manage.py sync_schedules`; "
                "a task must live in the tasks.py of an app in INSTALLED_APPS.",
                entry.name,
                entry.task,
            )
            return None
        try:
            result = super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        except SchedulingError:
            if not self.app.conf.task_always_eager:
                raise  # the broker refused it: beat's apply_entry logs that
            logger.exception("Periodic task %r (%s) failed.", entry.name, entry.task)
            return None
        if isinstance(result, EagerResult) and result.failed():  # eager without propagation
            logger.error(
                "Periodic task %r (%s) failed: %r\n%s", entry.name, entry.task, result.result, result.traceback
            )
        return result
