"""Retention: entries older than AUDIT_RETENTION_DAYS leave the log (a daily beat task), newer stay."""

from datetime import timedelta

from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from audit.tasks import purge_audit_entries
from devices.models import Plant


def test_deletes_entries_past_the_retention_and_keeps_the_rest(settings, plant_a):
    settings.AUDIT_RETENTION_DAYS = 30
    now = timezone.now()
    for age in (31, 400):
        AuditEntry.objects.filter(pk=audit_record(event="login", model=Plant).pk).update(
            timestamp=now - timedelta(days=age)
        )
    kept = audit_record(event="export", model=Plant).pk
    AuditEntry.objects.filter(pk=kept).update(timestamp=now - timedelta(days=29))
    before = AuditEntry.objects.count()

    assert purge_audit_entries() == 2
    assert AuditEntry.objects.count() == before - 2
    assert AuditEntry.objects.filter(pk=kept).exists()
    assert not AuditEntry.objects.filter(timestamp__lt=now - timedelta(days=30)).exists()
    assert purge_audit_entries() == 0  # idempotent


def test_pausing_a_periodic_task_is_recorded_but_beats_bookkeeping_is_not(db):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    every_day, _ = IntervalSchedule.objects.get_or_create(every=86400, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(name="Audit log: enforce retention", task="audit.tasks.purge_audit_entries",
                                       interval=every_day)  # fmt: skip
    task.total_run_count, task.last_run_at = 5, timezone.now()
    task.save()  # what beat does after a run
    task.enabled = False
    task.save()
    updates = AuditEntry.objects.filter(content_type__model="periodictask", action=AuditEntry.Action.UPDATE)
    assert [entry.changes for entry in updates] == [{"enabled": ["True", "False"]}]
