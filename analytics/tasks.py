"""Thin Celery entry points of OEE reports (STYLE.md §3): plain arguments, one service each.

Retry contract: ``send_oee_report`` retries ``TransientReportError`` with exponential backoff and
jitter (``OEE_REPORT_MAX_RETRIES``); on the last try the error is written on the report row. The
others are idempotent (unique report rows, conditional claims) and simply run again on the next
beat tick.
"""

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.exceptions import TransientReportError
from analytics.models import OEEReport
from analytics.reports import report_run, report_send, report_send_failed, reports_run_due
from devices.models import Plant

logger = logging.getLogger(__name__)


def _enqueue_sends(pairs) -> None:
    for report_id, revision in pairs:
        transaction.on_commit(lambda r=report_id, v=revision: send_oee_report.delay(r, v))


@shared_task(soft_time_limit=240, time_limit=300, ignore_result=True)
def run_oee_reports() -> int:
    """Beat: compute every closed shift/day/week report still in the late-data window; e-mail new revisions."""
    pairs = reports_run_due(now=timezone.now())
    _enqueue_sends(pairs)
    return len(pairs)


@shared_task(soft_time_limit=120, time_limit=150, ignore_result=True)
def run_oee_report(plant_id: int, kind: str, start: str, end: str, label: str = "") -> int | None:
    """Compute one report now (admin "run report"); e-mails it when its revision is new."""
    plant = Plant.objects.filter(pk=plant_id).first()
    if plant is None:
        logger.info("oee report: plant %s is gone", plant_id)
        return None
    report = report_run(
        plant=plant,
        kind=kind,
        start=datetime.fromisoformat(start),
        end=datetime.fromisoformat(end),
        label=label,
        now=timezone.now(),
    )
    if report is not None and report.revision > report.emailed_revision:
        _enqueue_sends([(report.pk, report.revision)])
    return report.pk if report else None


@shared_task(
    bind=True,
    autoretry_for=(TransientReportError,),
    retry_backoff=True,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=settings.OEE_REPORT_MAX_RETRIES,
    soft_time_limit=60,
    time_limit=90,
    ignore_result=True,
)
def send_oee_report(self, report_id: int, revision: int) -> bool:
    """E-mail one revision of a report to its subscribers, once."""
    if not OEEReport.objects.filter(pk=report_id).exists():
        logger.info("oee report %s is gone", report_id)
        return False
    try:
        return report_send(report_id=report_id, revision=revision)
    except TransientReportError as exc:
        if self.request.retries >= self.max_retries:
            report_send_failed(report_id=report_id, error=str(exc))
            return False
        raise
