"""Thin Celery entry points of alerting (STYLE.md §3): plain arguments, one service each.

Retry contract: only ``deliver_notification`` retries (``TransientDeliveryError``, exponential
backoff with jitter, ``NOTIFY_MAX_RETRIES``); on its last try the failure is written on the
``Delivery`` row instead of raising. The others are idempotent and simply run again on the
next ingest or beat tick. All are acknowledged late (``CELERY_TASK_ACKS_LATE``): a task whose
worker died comes back after the broker's visibility timeout; ``sweep_deliveries`` does not
wait that long for the deliveries such a worker left ``sending``.
"""

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from alerts.exceptions import TransientDeliveryError
from alerts.services.evaluation import rules_evaluate
from alerts.services.notifications import deliveries_sweep, delivery_send, notifications_dispatch
from alerts.services.timers import alarm_timers_run

logger = logging.getLogger(__name__)


@shared_task(soft_time_limit=50, time_limit=60, ignore_result=True)
def evaluate_rules(device_ids: list[int], start: str, end: str, metrics: list[str] | None = None) -> int:
    """Evaluate the rules of these devices over readings stored in [start, end] (ISO 8601)."""
    start_at, end_at = datetime.fromisoformat(start), datetime.fromisoformat(end)
    return rules_evaluate(device_ids=device_ids, start=start_at, end=end_at, metrics=metrics)


@shared_task(soft_time_limit=50, time_limit=60, ignore_result=True)
def run_alarm_timers() -> dict:
    """On/off-delays, no-data rules, shelve expiry, escalations and repeats (beat, every few seconds)."""
    result = alarm_timers_run(now=timezone.now())
    if any(result.values()):
        logger.info("alarm timers: %s", result)
    return result


@shared_task(soft_time_limit=50, time_limit=60, ignore_result=True)
def dispatch_notifications() -> int:
    """Route new alarm events into deliveries and enqueue the ones due (also on beat, for later windows)."""
    return _enqueue_deliveries(notifications_dispatch(now=timezone.now()))


@shared_task(
    bind=True,
    autoretry_for=(TransientDeliveryError,),
    retry_backoff=True,
    retry_backoff_max=settings.NOTIFY_RETRY_BACKOFF_MAX,
    retry_jitter=True,
    max_retries=settings.NOTIFY_MAX_RETRIES,
    soft_time_limit=45,
    time_limit=60,  # NOTIFY_STUCK_SECONDS must outlast it
    ignore_result=True,
)
def deliver_notification(self, delivery_id: int) -> str | None:
    """Send one delivery; a gone or already-sent delivery is a no-op."""
    # Tasks are acknowledged late: a task whose worker died mid-send comes back marked redelivered.
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    final = self.request.retries >= self.max_retries
    delivery = delivery_send(delivery_id=delivery_id, final_attempt=final, now=timezone.now(), reclaim=redelivered)
    if delivery is None:
        logger.info("delivery %s: nothing to send (gone or already handled)", delivery_id)
        return None
    return delivery.status


@shared_task(soft_time_limit=50, time_limit=60, ignore_result=True)
def sweep_deliveries() -> int:
    """Beat: send again the deliveries a dead worker left ``sending`` (or whose retry it held)."""
    return _enqueue_deliveries(deliveries_sweep(now=timezone.now()))


def _enqueue_deliveries(delivery_ids: list[int]) -> int:
    """Queue ``deliver_notification`` for each id once the caller's transaction commits; how many."""
    for delivery_id in delivery_ids:
        transaction.on_commit(lambda pk=delivery_id: deliver_notification.delay(pk))
    return len(delivery_ids)
