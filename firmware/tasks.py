"""Thin Celery entry points of the OTA rollouts (scheduled ones via ``manage.py sync_schedules``)."""

import logging

from celery import shared_task
from django.utils import timezone

from firmware.exceptions import TransientNotifyError
from firmware.models import Rollout
from firmware.services.mail import rollout_paused_mail
from firmware.services.notify import targets_notify
from firmware.services.rollouts import rollout_advance, rollouts_start_due, targets_push_stuck
from firmware.services.updates import updates_time_out

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True, soft_time_limit=60, time_limit=90, acks_late=True)
def advance_rollout(rollout_id: int) -> str:
    """One idempotent step of a rollout (notify the open stage, judge thresholds)."""
    return rollout_advance(rollout_id=rollout_id)


@shared_task(
    ignore_result=True, autoretry_for=(TransientNotifyError,), retry_backoff=True, retry_jitter=True,
    max_retries=5, soft_time_limit=60, time_limit=90,
)  # fmt: skip
def notify_devices(target_ids: list[int], command: str = "firmware_update") -> int:
    """Push a firmware command to the targets' devices (MQTT + WebSocket). After the last retry the
    devices still find the update by polling, and the beat pushes it again (``targets_push_stuck``),
    so nothing is lost; the failure is only logged."""
    try:
        return targets_notify(target_ids, command)
    except TransientNotifyError:
        if notify_devices.request.retries >= notify_devices.max_retries:
            logger.warning("firmware push to %d devices given up; they will poll", len(target_ids))
            return 0
        raise


@shared_task(ignore_result=True, soft_time_limit=120, time_limit=150)
def run_rollout_timers() -> dict:
    """Beat: start due scheduled rollouts, time out silent updates, push again the commands a dead
    worker left unsent, and nudge running rollouts."""
    now = timezone.now()
    result = {
        "started": rollouts_start_due(now=now),
        "timed_out": updates_time_out(now=now),
        "pushed_again": targets_push_stuck(now=now),
    }
    for rollout_id in Rollout.objects.filter(state=Rollout.State.RUNNING).values_list("pk", flat=True):
        rollout_advance(rollout_id=rollout_id, now=now)
    return result


@shared_task(
    ignore_result=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=5, soft_time_limit=60, time_limit=90
)
def mail_rollout_paused(rollout_id: int) -> int:
    """E-mail the plant admins that a rollout paused itself; returns the number of recipients."""
    rollout = Rollout.objects.select_related("plant").filter(pk=rollout_id).first()
    if rollout is None:
        logger.info("rollout %s is gone; no mail", rollout_id)
        return 0
    return rollout_paused_mail(rollout=rollout)
