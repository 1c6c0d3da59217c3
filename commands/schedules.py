"""The commands app's periodic tasks (installed by ``manage.py sync_schedules``, editable in the admin)."""

from factory.beat import Schedule

SCHEDULES = [
    Schedule(
        "Commands: expire unanswered commands, follow firmware updates", "commands.tasks.expire_commands", every=10
    ),
]
