"""Retention of dead letters (messages the ingest refused, kept with their reason for the admin)."""

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from devices.models import DeadLetter


def dead_letters_purge(*, now: datetime | None = None, batch: int = 1000) -> int:
    """Delete dead letters received more than ``DEAD_LETTER_RETENTION_DAYS`` before ``now``; return the count.

    Deletes oldest first in batches of ``batch`` rows (each its own short statement on the
    ``received_at`` index), so a large backlog never holds locks the bridge waits on. Idempotent:
    a second run finds nothing to delete.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.DEAD_LETTER_RETENTION_DAYS)
    old = DeadLetter.objects.filter(received_at__lt=cutoff).order_by("received_at")
    deleted = 0
    while ids := list(old.values_list("pk", flat=True)[:batch]):
        deleted += DeadLetter.objects.filter(pk__in=ids).delete()[0]
    return deleted
