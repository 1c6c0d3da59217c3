"""Rollout lifecycle: create, start, advance stages, pause/resume/approve/cancel, retry, roll back.

Every transition is a conditional UPDATE on the rollout row (``filter(pk=…, state=…).update(…)``):
a retried or concurrent task finds the work done and changes nothing. ``rollout_advance`` also
locks the rollout row, so two workers never notify the same stage twice.
"""

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from audit.services import audit_record
from devices.models import Device, DeviceGroup, Line, Plant
from firmware.models import FirmwareImage, MaintenanceWindow, Rollout, RolloutEvent, RolloutTarget, RolloutTargetEvent
from firmware.services.stages import parse_stages, stage_sizes
from firmware.signals import rollout_progressed_after_commit

logger = logging.getLogger(__name__)


def _audit(rollout: Rollout, action: str, by=None, detail: str = "", at: datetime | None = None) -> None:
    """Record a rollout-level change; the dashboard shows it (and the new counts) after commit."""
    RolloutEvent.objects.create(rollout=rollout, action=action, by=by, detail=detail[:255], at=at or timezone.now())
    audit_record(event=f"rollout_{action}", obj=rollout, actor=by, data={"detail": detail[:255]} if detail else None)
    rollout_progressed_after_commit(rollout.pk)


def _enqueue_advance(rollout_id: int) -> None:
    from firmware.tasks import advance_rollout as advance_rollout_task

    transaction.on_commit(lambda: advance_rollout_task.delay(rollout_id))


def _enqueue_notify(target_ids: list[int], command: str = "firmware_update") -> None:
    from firmware.tasks import notify_devices as notify_devices_task

    chunk = 1000
    for start in range(0, len(target_ids), chunk):
        ids = target_ids[start : start + chunk]
        transaction.on_commit(lambda ids=ids: notify_devices_task.delay(ids, command))


def targets_push_stuck(*, now: datetime) -> int:
    """Push again the firmware commands that a worker killed mid-push left unsent: notified targets
    whose push has not finished ``FIRMWARE_PUSH_STUCK_SECONDS`` after notification (the beat runs
    this). Devices that got the first copy get the same command again (the same ``update_id``:
    they act on it once). Returns how many targets were queued for a push; idempotent."""
    cutoff = now - timedelta(seconds=settings.FIRMWARE_PUSH_STUCK_SECONDS)
    stuck = RolloutTarget.objects.filter(
        status=RolloutTarget.Status.NOTIFIED, pushed_at__isnull=True, progress_at__lt=cutoff
    ).values_list("pk", flat=True)
    ids = list(stuck[:10_000])
    _enqueue_notify(ids)
    return len(ids)


def rollout_candidates(
    *, plant: Plant, image: FirmwareImage, line: Line | None = None, group: DeviceGroup | None = None, devices=None
) -> tuple[list[Device], dict[str, int]]:
    """Devices of ``plant`` the selection names, filtered to those that can take ``image``.

    Returns the eligible devices (ordered by uid) and counts of the ones left out and why:
    ``incompatible`` (hardware model), ``disabled``, ``up_to_date``, ``busy`` (already in an
    active rollout). An incompatible device is never a target.
    """
    queryset = Device.objects.filter(plant=plant)
    if line is not None:
        queryset = queryset.filter(line=line)
    if group is not None:
        queryset = queryset.filter(groups=group)
    if devices:
        queryset = queryset.filter(pk__in=[d.pk for d in devices])
    busy = set(
        RolloutTarget.objects.filter(
            device__in=queryset, status__in=(RolloutTarget.Status.QUEUED, *RolloutTarget.ACTIVE),
            rollout__state__in=(Rollout.State.SCHEDULED, Rollout.State.RUNNING, Rollout.State.PAUSED),
        ).values_list("device_id", flat=True)
    )  # fmt: skip
    eligible, skipped = [], {"incompatible": 0, "disabled": 0, "up_to_date": 0, "busy": 0}
    for device in queryset.order_by("uid"):
        if not image.supports(device.model):
            skipped["incompatible"] += 1
        elif not device.enabled:
            skipped["disabled"] += 1
        elif device.firmware_version == image.version:
            skipped["up_to_date"] += 1
        elif device.pk in busy:
            skipped["busy"] += 1
        else:
            eligible.append(device)
    return eligible, skipped


def _no_targets_error(skipped: dict[str, int]) -> ValidationError:
    reasons = ", ".join(f"{count} {why.replace('_', ' ')}" for why, count in skipped.items() if count)
    return ValidationError({"targets": f"No compatible device to update ({reasons or 'the selection is empty'})."})


@transaction.atomic
def rollout_create(
    *, plant: Plant, name: str, image: FirmwareImage, stages: list, line: Line | None = None,
    group: DeviceGroup | None = None, devices=None, success_threshold: int = 100, error_threshold: int = 20,
    auto_advance: bool = True, scheduled_at: datetime | None = None, by=None,
) -> Rollout:  # fmt: skip
    """Create a draft rollout of ``image`` to the compatible devices of the selection, split into stages.

    Raises ``ValidationError`` (nothing written) when the image belongs to another plant, the
    stages are malformed, or no compatible device is left.
    """
    if image.plant_id != plant.pk:
        raise ValidationError({"image": "This image belongs to another plant."})
    parse_stages(stages)
    eligible, skipped = rollout_candidates(plant=plant, image=image, line=line, group=group, devices=devices)
    if not eligible:
        raise _no_targets_error(skipped)
    rollout = Rollout(
        plant=plant, name=name, image=image, stages=stages, success_threshold=success_threshold,
        error_threshold=error_threshold, auto_advance=auto_advance, scheduled_at=scheduled_at, created_by=by,
    )  # fmt: skip
    rollout.full_clean()
    rollout.save()
    _targets_create(rollout, [(device, image) for device in eligible])
    detail = ", ".join(f"{count} {why.replace('_', ' ')} skipped" for why, count in skipped.items() if count)
    _audit(rollout, "created", by, f"{len(eligible)} devices" + (f"; {detail}" if detail else ""))
    return rollout


def _targets_create(rollout: Rollout, pairs: list[tuple[Device, FirmwareImage]]) -> None:
    sizes = stage_sizes(rollout.stages, len(pairs))
    targets, index = [], 0
    for stage, size in enumerate(sizes, start=1):
        for device, image in pairs[index : index + size]:
            targets.append(
                RolloutTarget(rollout=rollout, device=device, image=image, stage=stage,
                              previous_version=device.firmware_version)
            )  # fmt: skip
        index += size
    RolloutTarget.objects.bulk_create(targets, batch_size=1000)


def _claim(rollout: Rollout, from_states, **changes) -> bool:
    updated = Rollout.objects.filter(pk=rollout.pk, state__in=from_states).update(**changes)
    rollout.refresh_from_db()
    return updated == 1


def _refuse(rollout: Rollout, action: str) -> ValidationError:
    return ValidationError(f"Cannot {action} a rollout that is {rollout.get_state_display().lower()}.")


@transaction.atomic
def rollout_start(*, rollout: Rollout, by=None, now: datetime | None = None) -> Rollout:
    """Start a draft: running now, or scheduled when ``scheduled_at`` is in the future. Not idempotent
    by design: starting twice is refused (``ValidationError``)."""
    now = now or timezone.now()
    if rollout.scheduled_at and rollout.scheduled_at > now:
        if not _claim(rollout, [Rollout.State.DRAFT], state=Rollout.State.SCHEDULED):
            raise _refuse(rollout, "start")
        _audit(rollout, "scheduled", by, f"starts at {rollout.scheduled_at.isoformat()}", at=now)
        return rollout
    if not _claim(
        rollout,
        [Rollout.State.DRAFT, Rollout.State.SCHEDULED],
        state=Rollout.State.RUNNING,
        started_at=now,
        current_stage=1,
    ):
        raise _refuse(rollout, "start")
    _audit(rollout, "started", by, at=now)
    _enqueue_advance(rollout.pk)
    return rollout


def rollouts_start_due(*, now: datetime) -> int:
    """Start scheduled rollouts whose time has come (beat). Idempotent: each is claimed once."""
    started = 0
    for rollout in Rollout.objects.filter(state=Rollout.State.SCHEDULED, scheduled_at__lte=now):
        with transaction.atomic():
            if _claim(rollout, [Rollout.State.SCHEDULED], state=Rollout.State.RUNNING, started_at=now, current_stage=1):
                _audit(rollout, "started", None, "scheduled start", at=now)
                _enqueue_advance(rollout.pk)
                started += 1
    return started


@transaction.atomic
def rollout_pause(*, rollout: Rollout, by=None, reason: str = "") -> Rollout:
    """Pause: no new device is notified; devices already updating finish. ``ValidationError`` unless running."""
    if not _claim(
        rollout,
        [Rollout.State.RUNNING, Rollout.State.SCHEDULED],
        state=Rollout.State.PAUSED,
        pause_reason=reason[:255] or "paused by a user",
    ):
        raise _refuse(rollout, "pause")
    _audit(rollout, "paused", by, reason)
    return rollout


@transaction.atomic
def rollout_resume(*, rollout: Rollout, by=None) -> Rollout:
    """Resume a paused rollout. The person resuming accepts the current stage's failures: its
    thresholds are waived and it completes once every device in it has finished."""
    if not _claim(
        rollout,
        [Rollout.State.PAUSED],
        state=Rollout.State.RUNNING,
        pause_reason="",
        waived_stage=rollout.current_stage,
    ):
        raise _refuse(rollout, "resume")
    if rollout.current_stage == 0:
        Rollout.objects.filter(pk=rollout.pk).update(current_stage=1, started_at=timezone.now())
        rollout.refresh_from_db()
    _audit(rollout, "resumed", by)
    _enqueue_advance(rollout.pk)
    return rollout


@transaction.atomic
def rollout_approve(*, rollout: Rollout, by=None) -> Rollout:
    """Approve the next stage of a rollout waiting for approval (``auto_advance`` off)."""
    stage = rollout.current_stage
    updated = Rollout.objects.filter(
        pk=rollout.pk, state=Rollout.State.RUNNING, awaiting_approval=True, current_stage=stage
    ).update(awaiting_approval=False, current_stage=stage + 1)
    rollout.refresh_from_db()
    if updated != 1:
        raise ValidationError("This rollout is not waiting for approval.")
    _audit(rollout, "approved", by, f"stage {stage + 1}")
    _enqueue_advance(rollout.pk)
    return rollout


def _targets_set(queryset, status: str, detail: str, now: datetime) -> list[int]:
    ids = list(queryset.values_list("pk", flat=True))
    if ids:
        # A new status needs its own push (notified: the firmware command; pushed_at says it went out).
        RolloutTarget.objects.filter(pk__in=ids).update(status=status, detail=detail, progress_at=now, pushed_at=None)
        RolloutTargetEvent.objects.bulk_create(
            [RolloutTargetEvent(target_id=pk, at=now, status=status, detail=detail) for pk in ids], batch_size=1000
        )
    return ids


@transaction.atomic
def rollout_cancel(*, rollout: Rollout, by=None) -> Rollout:
    """Cancel: queued and in-progress updates become ``cancelled`` and their devices are told."""
    now = timezone.now()
    Rollout.objects.select_for_update().filter(pk=rollout.pk).first()
    if not _claim(
        rollout,
        [Rollout.State.DRAFT, Rollout.State.SCHEDULED, Rollout.State.RUNNING, Rollout.State.PAUSED],
        state=Rollout.State.CANCELLED,
        finished_at=now,
    ):
        raise _refuse(rollout, "cancel")
    pending = rollout.targets.filter(status__in=(RolloutTarget.Status.QUEUED, *RolloutTarget.ACTIVE))
    notified = list(pending.exclude(status=RolloutTarget.Status.QUEUED).values_list("pk", flat=True))
    _targets_set(pending, RolloutTarget.Status.CANCELLED, "rollout cancelled", now)
    _audit(rollout, "cancelled", by, at=now)
    _enqueue_notify(notified, "firmware_cancel")
    return rollout


@transaction.atomic
def rollout_retry(*, rollout: Rollout, by=None) -> int:
    """Queue the failed and timed-out devices again (in their stages); returns how many.
    A completed or failed rollout runs again for them."""
    Rollout.objects.select_for_update().filter(pk=rollout.pk).first()
    rollout.refresh_from_db()
    if rollout.state not in (
        Rollout.State.RUNNING,
        Rollout.State.PAUSED,
        Rollout.State.COMPLETED,
        Rollout.State.FAILED,
    ):
        raise _refuse(rollout, "retry")
    failed = rollout.targets.filter(status__in=RolloutTarget.FAILURES)
    ids = _targets_set(failed, RolloutTarget.Status.QUEUED, "retry", timezone.now())
    if not ids:
        raise ValidationError("No failed or timed-out device to retry.")
    RolloutTarget.objects.filter(pk__in=ids).update(attempts=F("attempts") + 1)
    Rollout.objects.filter(pk=rollout.pk, state__in=[Rollout.State.COMPLETED, Rollout.State.FAILED]).update(
        state=Rollout.State.RUNNING, finished_at=None
    )
    # The operator accepts the retry; earlier failures of those stages no longer count.
    Rollout.objects.filter(pk=rollout.pk).update(waived_stage=rollout.current_stage)
    rollout.refresh_from_db()
    _audit(rollout, "retried", by, f"{len(ids)} devices")
    if rollout.state == Rollout.State.RUNNING:
        _enqueue_advance(rollout.pk)
    return len(ids)


@transaction.atomic
def rollout_rollback(*, rollout: Rollout, by=None) -> Rollout:
    """Create and start the reverse rollout: every device this rollout updated goes back to the image
    of its previous version (same plant, compatible model). Cancels ``rollout`` if still active.
    ``ValidationError`` when no device has a previous image to return to."""
    if rollout.is_active():
        rollout_cancel(rollout=rollout, by=by)
    done = list(
        rollout.targets.filter(status=RolloutTarget.Status.SUCCEEDED).select_related("device").order_by("device__uid")
    )
    images = list(FirmwareImage.objects.filter(plant=rollout.plant, version__in={t.previous_version for t in done}))
    pairs, missing = [], 0
    for target in done:
        image = next(
            (i for i in images if i.version == target.previous_version and i.supports(target.device.model)), None
        )
        if image is None or target.device.firmware_version == target.previous_version:
            missing += 1
        else:
            pairs.append((target.device, image))
    if not pairs:
        raise ValidationError("No device of this rollout can be rolled back: no previous image is stored for them.")
    reverse = Rollout(
        plant=rollout.plant, name=f"Rollback of {rollout.name}"[:100], image=None, stages=["100%"],
        success_threshold=rollout.success_threshold, error_threshold=100, auto_advance=True,
        rollback_of=rollout, created_by=by,
    )  # fmt: skip
    reverse.full_clean()
    reverse.save()
    _targets_create(reverse, pairs)
    _audit(
        rollout, "rolled_back", by, f"rollback #{reverse.pk}: {len(pairs)} devices, {missing} without previous image"
    )
    _audit(reverse, "created", by, f"rollback of #{rollout.pk}")
    return rollout_start(rollout=reverse, by=by)


def _stage_counts(rollout: Rollout, stage: int) -> dict[str, int]:
    rows = rollout.targets.filter(stage=stage).values("status").annotate(n=Count("id"))
    return {row["status"]: row["n"] for row in rows}


def rollout_advance(*, rollout_id: int, now: datetime | None = None) -> str:
    """One idempotent step of a running rollout; returns what it did.

    Under a lock on the rollout row: notifies the queued devices of the current and earlier stages
    (queued → notified), then judges the current stage. Failures above ``error_threshold`` pause the
    rollout and mail the plant admins; successes reaching ``success_threshold`` open the next
    stage (or wait for approval); the last stage completes the rollout once every device finished.
    Outside the plant's maintenance window nobody new is notified (the beat task steps running
    rollouts every 30 s, so notification starts when the window opens). Running it again with
    nothing new changes nothing.
    """
    now = now or timezone.now()
    with transaction.atomic():
        rollout = Rollout.objects.select_for_update().filter(pk=rollout_id).first()
        if rollout is None or rollout.state != Rollout.State.RUNNING:
            return "idle"
        outcome = "waiting"
        window = MaintenanceWindow.objects.select_related("plant").filter(plant_id=rollout.plant_id).first()
        window_open = window is None or window.is_open(now)
        for _ in range(len(rollout.stages) + 1):  # at most one pass per stage opened
            if window_open:
                queued = rollout.targets.filter(stage__lte=rollout.current_stage, status=RolloutTarget.Status.QUEUED)
                ids = _targets_set(queued, RolloutTarget.Status.NOTIFIED, f"stage {rollout.current_stage}", now)
                _enqueue_notify(ids)
                if ids:
                    rollout_progressed_after_commit(rollout.pk)
            outcome = _judge_stage(rollout, now)
            if outcome != "next_stage":
                break
        return outcome if window_open or outcome != "waiting" else "outside_window"


def _judge_stage(rollout: Rollout, now: datetime) -> str:
    stage = rollout.current_stage
    counts = _stage_counts(rollout, stage)
    total = sum(counts.values())
    failures = sum(counts.get(s, 0) for s in RolloutTarget.FAILURES)
    succeeded = counts.get(RolloutTarget.Status.SUCCEEDED, 0)
    unfinished = sum(counts.get(s, 0) for s in (RolloutTarget.Status.QUEUED, *RolloutTarget.ACTIVE))
    waived = stage <= rollout.waived_stage
    if not waived and failures * 100 > rollout.error_threshold * total:
        reason = f"stage {stage}: {failures} of {total} devices failed (error threshold {rollout.error_threshold}%)"
        if _claim(rollout, [Rollout.State.RUNNING], state=Rollout.State.PAUSED, pause_reason=reason):
            _audit(rollout, "auto_paused", None, reason, at=now)
            from firmware.tasks import mail_rollout_paused as mail_rollout_paused_task

            transaction.on_commit(lambda: mail_rollout_paused_task.delay(rollout.pk))
        return "paused"
    stage_ok = unfinished == 0 if waived else succeeded * 100 >= rollout.success_threshold * total
    if stage_ok and stage < len(rollout.stages):
        if not rollout.auto_advance:
            if Rollout.objects.filter(pk=rollout.pk, awaiting_approval=False, current_stage=stage).update(
                awaiting_approval=True
            ):
                _audit(rollout, "awaiting_approval", None, f"stage {stage + 1}", at=now)
            return "awaiting_approval"
        if Rollout.objects.filter(pk=rollout.pk, state=Rollout.State.RUNNING, current_stage=stage).update(
            current_stage=stage + 1
        ):
            rollout.current_stage = stage + 1
            _audit(rollout, "stage_started", None, f"stage {stage + 1}", at=now)
            return "next_stage"
        return "waiting"
    if (
        unfinished
        or rollout.targets.filter(
            stage__lte=stage, status__in=(RolloutTarget.Status.QUEUED, *RolloutTarget.ACTIVE)
        ).exists()
    ):
        return "waiting"
    if stage_ok:
        if _claim(rollout, [Rollout.State.RUNNING], state=Rollout.State.COMPLETED, finished_at=now):
            _audit(rollout, "completed", None, at=now)
        return "completed"
    reason = (
        f"stage {stage} finished with {succeeded} of {total} succeeded (success threshold {rollout.success_threshold}%)"
    )
    if _claim(rollout, [Rollout.State.RUNNING], state=Rollout.State.PAUSED, pause_reason=reason):
        _audit(rollout, "auto_paused", None, reason, at=now)
    return "paused"


def rollout_progress(rollout: Rollout) -> list[dict]:
    """Per stage: size and counts per status (one query), for the API and the admin."""
    rows = rollout.targets.values("stage", "status").annotate(n=Count("id")).order_by("stage")
    stages: dict[int, dict] = {}
    for row in rows:
        entry = stages.setdefault(row["stage"], {"stage": row["stage"], "total": 0, "counts": {}})
        entry["counts"][row["status"]] = row["n"]
        entry["total"] += row["n"]
    return [stages[key] for key in sorted(stages)]


def rollout_failing_targets(rollout: Rollout, limit: int = 50):
    return rollout.targets.filter(Q(status__in=RolloutTarget.FAILURES)).select_related("device")[:limit]
