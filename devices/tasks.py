"""Periodic telemetry housekeeping (scheduled by ``manage.py sync_schedules``). Thin: one service each."""

import logging
import time

from celery import shared_task
from django.utils import timezone

from devices.services.dead_letters import dead_letters_purge
from devices.services.rollups import retention_enforce, rollups_refresh
from devices.services.status import devices_mark_offline

logger = logging.getLogger(__name__)

ROLLUP_BATCH = 5000
ROLLUP_TIME_BUDGET = 20.0  # seconds; the next beat tick continues where this one stopped


@shared_task(soft_time_limit=50, time_limit=60, ignore_result=True)
def refresh_rollups() -> int:
    """Recompute rollups for pending (device, minute) marks until none are left or the budget is spent."""
    started, total = time.monotonic(), 0
    while time.monotonic() - started < ROLLUP_TIME_BUDGET:
        done = rollups_refresh(limit=ROLLUP_BATCH)
        total += done
        if done < ROLLUP_BATCH:
            break
    return total


@shared_task(soft_time_limit=600, time_limit=660, ignore_result=True)
def enforce_retention() -> dict:
    """Delete telemetry past its retention, in small batches that never block ingest for long."""
    result = retention_enforce(now=timezone.now())
    logger.info("retention: deleted %s", result)
    return result


@shared_task(soft_time_limit=50, time_limit=60, ignore_result=True)
def mark_offline_devices() -> int:
    """Mark silent devices offline (one status event per change)."""
    return len(devices_mark_offline(now=timezone.now()))


@shared_task(soft_time_limit=300, time_limit=330, ignore_result=True)
def purge_dead_letters() -> int:
    """Delete dead letters past DEAD_LETTER_RETENTION_DAYS."""
    return dead_letters_purge(now=timezone.now())
