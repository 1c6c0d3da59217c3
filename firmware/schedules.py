"""The firmware app's periodic tasks (installed by ``manage.py sync_schedules``, editable in the admin)."""

from factory.beat import Schedule

SCHEDULES = [
    Schedule(
        "Firmware: scheduled starts, update timeouts, stage checks", "firmware.tasks.run_rollout_timers", every=30
    ),
]
