"""The analytics app's periodic tasks (installed by ``manage.py sync_schedules``, editable in the admin)."""

from factory.beat import Schedule

SCHEDULES = [
    Schedule("OEE: shift, day and week reports", "analytics.tasks.run_oee_reports", every=300),
]
