"""The device side of an update: what is assigned to a device, its status reports, and timeouts."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from devices.models import Device
from firmware.exceptions import UpdateReportError
from firmware.models import FirmwareImage, Rollout, RolloutTarget, RolloutTargetEvent
from firmware.signals import rollout_progressed_after_commit

# The order a device moves through; a report may skip steps forward, never go back.
ORDER = {
    RolloutTarget.Status.NOTIFIED: 0,
    RolloutTarget.Status.DOWNLOADING: 1,
    RolloutTarget.Status.DOWNLOADED: 2,
    RolloutTarget.Status.INSTALLING: 3,
    RolloutTarget.Status.SUCCEEDED: 4,
    RolloutTarget.Status.FAILED: 4,
}
REPORTABLE = (
    RolloutTarget.Status.DOWNLOADING,
    RolloutTarget.Status.DOWNLOADED,
    RolloutTarget.Status.INSTALLING,
    RolloutTarget.Status.SUCCEEDED,
    RolloutTarget.Status.FAILED,
)
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


@dataclass(frozen=True)
class StatusReport:
    """One status report of a device for one of its updates (already validated for shape)."""

    device: Device
    update_id: int
    status: str
    detail: str = ""


def update_report(
    *, device: Device, update_id: int, status: str, detail: str = "", now: datetime | None = None
) -> RolloutTarget:
    """Apply a device's status report to its update and return it (``updates_report_many`` for one).

    Raises ``UpdateReportError``: 404 when the update is not this device's; 409 when the update is
    finished, cancelled or timed out, or the status goes backwards. Nothing changes then. Repeating
    the current status (a retried request) only refreshes the timeout clock. On ``succeeded`` the
    device's ``firmware_version`` becomes the image's version. A terminal status enqueues a rollout
    step after commit.
    """
    result = updates_report_many([StatusReport(device, update_id, status, detail)], now=now)[0]
    if isinstance(result, UpdateReportError):
        raise result
    return result


def _apply(target: RolloutTarget | None, report: StatusReport) -> UpdateReportError | str:
    """The outcome of ``report`` on ``target`` as it stands: an error, ``"repeat"`` or ``"move"``."""
    update_id, status = report.update_id, report.status
    if target is None:
        return UpdateReportError(f"Update {update_id} is not assigned to this device.", status=404)
    if target.status not in ORDER or target.status == RolloutTarget.Status.FAILED:
        return UpdateReportError(f"Update {update_id} is {target.status}; no further reports are accepted.")
    if target.status == status:
        return "repeat"
    if ORDER[status] <= ORDER[target.status]:
        return UpdateReportError(f"Update {update_id} is already {target.status}; it cannot go back to {status}.")
    return "move"


def updates_report_many(
    reports: list[StatusReport], *, now: datetime | None = None
) -> list[RolloutTarget | UpdateReportError]:
    """Apply several devices' status reports in one transaction; one result per report, in order.

    Each report gets the rules of ``update_report`` as if the reports had arrived one after the
    other (two reports for one update in the same batch see each other). A refused report
    (``UpdateReportError`` in its place) changes nothing. The updates are locked while they are
    judged, so a concurrent batch or a cancel cannot interleave. A ``DatabaseError`` rolls the whole
    batch back (nothing changed) and propagates. After commit: one rollout step per rollout that
    got a terminal status, and ``firmware.signals.rollout_progressed`` (the live bus throttles the
    rollout's snapshot).
    """
    now = now or timezone.now()
    ids = sorted({r.update_id for r in reports})
    results: list[RolloutTarget | UpdateReportError] = []
    with transaction.atomic():
        # Locked in primary-key order: two batches never wait for each other in a cycle. (SQLite ignores
        # FOR UPDATE; its transactions are IMMEDIATE in our settings, so batches run one after the other.)
        # No join here: FOR UPDATE would lock the shared image row too and serialise every batch.
        targets = {t.pk: t for t in RolloutTarget.objects.select_for_update().filter(pk__in=ids).order_by("pk")}
        changed, repeated, events, versions, touched, finished = {}, set(), [], {}, set(), set()
        for report in reports:
            target = targets.get(report.update_id)
            if target is not None and target.device_id != report.device.pk:
                target = None
            outcome = _apply(target, report)
            if isinstance(outcome, UpdateReportError):
                results.append(outcome)
                continue
            if outcome == "repeat":
                target.progress_at = now
                repeated.add(target.pk)
            else:
                detail = (report.detail or "")[:255]
                target.status, target.detail, target.progress_at = report.status, detail, now
                changed[target.pk] = target
                events.append(RolloutTargetEvent(target=target, at=now, status=report.status, detail=detail))
                touched.add(target.rollout_id)
                if report.status == RolloutTarget.Status.SUCCEEDED:
                    versions.setdefault(target.image_id, set()).add(report.device.pk)
                if report.status in RolloutTarget.TERMINAL:
                    finished.add(target.rollout_id)
            results.append(_copy(target))
        _write(changed, repeated - set(changed), events, versions, now)
        for rollout_id in sorted(finished):
            _enqueue_advance(rollout_id)
        for rollout_id in sorted(touched):
            rollout_progressed_after_commit(rollout_id)
    return results


def _copy(target: RolloutTarget) -> RolloutTarget:
    """The target as this report left it (a later report in the batch may move it further)."""
    copy = RolloutTarget(pk=target.pk, rollout_id=target.rollout_id, device_id=target.device_id,
                         image_id=target.image_id, stage=target.stage, status=target.status, detail=target.detail,
                         progress_at=target.progress_at)  # fmt: skip
    return copy


def _write(changed: dict, repeated: set, events: list, versions: dict, now: datetime) -> None:
    if changed:
        _set_statuses(list(changed.values()), now)
        RolloutTargetEvent.objects.bulk_create(events)
    if repeated:
        RolloutTarget.objects.filter(pk__in=sorted(repeated)).update(progress_at=now)
    if versions:  # image id -> devices that succeeded with it
        names = dict(FirmwareImage.objects.filter(pk__in=versions).values_list("pk", "version"))
        for image_id, device_ids in versions.items():
            Device.objects.filter(pk__in=sorted(device_ids)).update(firmware_version=names[image_id])


def _set_statuses(targets: list[RolloutTarget], now: datetime) -> None:
    """One ``UPDATE … SET status = CASE id WHEN …`` for the whole batch: ``bulk_update`` builds a
    Case/When expression tree per row, which dominated a batch's time (docs/benchmarks.md)."""
    table = connection.ops.quote_name(RolloutTarget._meta.db_table)
    whens = " ".join(["WHEN %s THEN %s"] * len(targets))
    marks = ", ".join(["%s"] * len(targets))
    # Only placeholders and the quoted table name are interpolated into the statement.
    sets = f"status = CASE id {whens} END, detail = CASE id {whens} END, progress_at = %s"
    sql = f"UPDATE {table} SET {sets} WHERE id IN ({marks})"  # noqa: S608
    params = [v for t in targets for v in (t.pk, t.status)] + [v for t in targets for v in (t.pk, t.detail)]
    progress_at = RolloutTarget._meta.get_field("progress_at").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, progress_at, *(t.pk for t in targets)])


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
                status=RolloutTarget.Status.TIMED_OUT,
                detail=f"no progress for {settings.FIRMWARE_UPDATE_TIMEOUT} s while {status}",
            ):
                RolloutTargetEvent.objects.create(
                    target_id=pk, at=now, status=RolloutTarget.Status.TIMED_OUT, detail=f"while {status}"
                )
                timed_out += 1
                rollouts.add(rollout_id)
    with transaction.atomic():
        for rollout_id in rollouts:
            _enqueue_advance(rollout_id)
            rollout_progressed_after_commit(rollout_id)
    return timed_out
