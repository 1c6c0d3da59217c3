"""The device side of an update: what is assigned to a device, its status reports, and timeouts."""

from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from devices.models import Device
from firmware.exceptions import UpdateReportError
from firmware.models import Rollout, RolloutTarget, RolloutTargetEvent

S = RolloutTarget.Status
# The order a device moves through; a report may skip steps forward, never go back.
ORDER = {S.NOTIFIED: 0, S.DOWNLOADING: 1, S.DOWNLOADED: 2, S.INSTALLING: 3, S.SUCCEEDED: 4, S.FAILED: 4}
REPORTABLE = (S.DOWNLOADING, S.DOWNLOADED, S.INSTALLING, S.SUCCEEDED, S.FAILED)
LIVE_ROLLOUT = (Rollout.State.RUNNING, Rollout.State.PAUSED)


def update_assigned(device_id: int) -> RolloutTarget | None:
    """The update this device should work on now (notified or in progress), or None."""
    return (
        RolloutTarget.objects.filter(
            device_id=device_id, status__in=RolloutTarget.ACTIVE, rollout__state__in=LIVE_ROLLOUT
        )
        .select_related("image")
        .order_by("-pk")
        .first()
    )


def update_for_download(device: Device, target_id: int) -> RolloutTarget | None:
    """The update ``target_id`` if it belongs to ``device`` and is still live; else None (→ 404)."""
    return (
        RolloutTarget.objects.filter(
            pk=target_id, device_id=device.pk, status__in=RolloutTarget.ACTIVE, rollout__state__in=LIVE_ROLLOUT
        )
        .select_related("image")
        .first()
    )


def update_report(
    *, device: Device, update_id: int, status: str, detail: str = "", now: datetime | None = None
) -> RolloutTarget:
    """Apply a device's status report to its update and return it.

    Raises ``UpdateReportError``: 404 when the update is not this device's; 409 when the update is
    finished, cancelled or timed out, or the status goes backwards. Nothing changes then. Repeating
    the current status (a retried request) only refreshes the timeout clock. On ``succeeded`` the
    device's ``firmware_version`` becomes the image's version. A terminal status enqueues a rollout
    step after commit.
    """
    now = now or timezone.now()
    detail = (detail or "")[:255]
    target = RolloutTarget.objects.filter(pk=update_id, device_id=device.pk).select_related("image").first()
    if target is None:
        raise UpdateReportError(f"Update {update_id} is not assigned to this device.", status=404)
    if target.status not in ORDER or target.status == S.FAILED:
        raise UpdateReportError(f"Update {update_id} is {target.status}; no further reports are accepted.")
    if target.status == status:
        RolloutTarget.objects.filter(pk=target.pk, status=status).update(progress_at=now)
        return target
    if ORDER[status] <= ORDER[target.status]:
        raise UpdateReportError(f"Update {update_id} is already {target.status}; it cannot go back to {status}.")
    with transaction.atomic():
        claimed = RolloutTarget.objects.filter(pk=target.pk, status=target.status).update(
            status=status, detail=detail, progress_at=now
        )
        if claimed != 1:  # another report won the race; the device retries with a fresh view
            raise UpdateReportError(f"Update {update_id} changed meanwhile; report again.")
        RolloutTargetEvent.objects.create(target=target, at=now, status=status, detail=detail)
        if status == S.SUCCEEDED:
            Device.objects.filter(pk=device.pk).update(firmware_version=target.image.version)
        if status in RolloutTarget.TERMINAL:
            _enqueue_advance(target.rollout_id)
    target.status, target.detail, target.progress_at = status, detail, now
    return target


# Thousands of devices finishing within a second need one rollout step, not thousands: the first
# report after commit claims a short cache key and schedules the step that much later; the step
# then sees every report committed before it. A step missed in a race is caught by the beat task
# (run_rollout_timers) that nudges running rollouts.
ADVANCE_COALESCE_SECONDS = 1


def _enqueue_advance(rollout_id: int) -> None:
    from firmware.tasks import advance_rollout as advance_rollout_task

    if settings.CELERY_TASK_ALWAYS_EAGER:  # no queue to flood: step inline, as before
        transaction.on_commit(lambda: advance_rollout_task.delay(rollout_id))
        return

    def schedule():
        if cache.add(f"firmware:advance:{rollout_id}", 1, timeout=ADVANCE_COALESCE_SECONDS):
            advance_rollout_task.apply_async((rollout_id,), countdown=ADVANCE_COALESCE_SECONDS)

    transaction.on_commit(schedule)


def updates_time_out(*, now: datetime | None = None) -> int:
    """Updates without progress for ``FIRMWARE_UPDATE_TIMEOUT`` seconds become ``timed_out`` (a
    failure for thresholds). Each is claimed with a conditional UPDATE; idempotent. Returns the count."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.FIRMWARE_UPDATE_TIMEOUT)
    stale = RolloutTarget.objects.filter(status__in=RolloutTarget.ACTIVE, progress_at__lt=cutoff)
    timed_out, rollouts = 0, set()
    for pk, status, rollout_id in stale.values_list("pk", "status", "rollout_id")[:5000]:
        with transaction.atomic():
            if RolloutTarget.objects.filter(pk=pk, status=status, progress_at__lt=cutoff).update(
                status=S.TIMED_OUT, detail=f"no progress for {settings.FIRMWARE_UPDATE_TIMEOUT} s while {status}"
            ):
                RolloutTargetEvent.objects.create(target_id=pk, at=now, status=S.TIMED_OUT, detail=f"while {status}")
                timed_out += 1
                rollouts.add(rollout_id)
    with transaction.atomic():
        for rollout_id in rollouts:
            _enqueue_advance(rollout_id)
    return timed_out
