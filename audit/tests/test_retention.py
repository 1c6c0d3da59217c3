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
