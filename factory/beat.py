"""The apps' Celery beat schedules: each app declares its periodic tasks in ``<app>/schedules.py``
(``SCHEDULES``, a list of ``Schedule``); ``installed_schedules()`` gathers them for
``manage.py sync_schedules``.
"""

from dataclasses import dataclass

from factory.apps import installed_submodules


@dataclass(frozen=True)
class Schedule:
    """One periodic task as an app declares it: beat runs ``task`` every ``every`` seconds."""

    name: str  # shown in the admin (Periodic tasks); the key sync_schedules upserts by
    task: str  # dotted name of a Celery task of the app
    every: int  # seconds


def installed_schedules() -> list[Schedule]:
    """The ``SCHEDULES`` of every installed app's ``schedules`` module, in ``INSTALLED_APPS`` order."""
    return [schedule for module in installed_submodules("schedules") for schedule in getattr(module, "SCHEDULES", ())]
