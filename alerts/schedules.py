"""The alerts app's periodic tasks (installed by ``manage.py sync_schedules``, editable in the admin)."""

from factory.beat import Schedule

SCHEDULES = [
    Schedule("Alarms: delays, no-data, shelves, escalation, repeats", "alerts.tasks.run_alarm_timers", every=5),
    Schedule("Alarms: dispatch notifications", "alerts.tasks.dispatch_notifications", every=10),
    Schedule("Alarms: resend deliveries a dead worker left", "alerts.tasks.sweep_deliveries", every=15),
]
