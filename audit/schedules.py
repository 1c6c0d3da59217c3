"""The audit app's periodic tasks (installed by ``manage.py sync_schedules``, editable in the admin)."""

from factory.beat import Schedule

SCHEDULES = [
    Schedule("Audit log: enforce retention", "audit.tasks.purge_audit_entries", every=86400),
]
