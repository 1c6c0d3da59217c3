"""The audit log's periodic task (scheduled by ``manage.py sync_schedules``)."""

import logging

from celery import shared_task
from django.utils import timezone

from audit.services import audit_entries_purge

logger = logging.getLogger(__name__)


@shared_task(soft_time_limit=300, time_limit=330, ignore_result=True)
def purge_audit_entries() -> int:
    """Delete audit entries past AUDIT_RETENTION_DAYS."""
    deleted = audit_entries_purge(now=timezone.now())
    logger.info("audit retention: deleted %s entries", deleted)
    return deleted
