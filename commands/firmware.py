"""Firmware commands as commands of this app: each ``firmware_update`` / ``firmware_cancel`` push
of a rollout target is recorded as a ``Command`` (name, the pushed frame as ``params``,
``update_id`` = the target), so a device's history and the audit trail hold everything sent to it.

Their frames keep their present form (README "Firmware updates", device protocol) and devices
keep answering with ``POST /api/v1/device/firmware/status/``; the firmware app stays the owner of
the update's state. ``firmware_commands_sync`` (run by the expiry beat task) moves each open
firmware command after its target: first progress → ``delivered``; ``succeeded`` →
``succeeded``; ``failed`` → ``failed``; ``timed_out`` → ``expired``; ``cancelled`` → ``failed``
for the update and ``succeeded`` for the cancel. The result holds the target's status and detail.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from commands.models import Command, CommandEvent
from commands.services import command_transition_record

FIRMWARE_NAMES = ("firmware_update", "firmware_cancel")
# Firmware commands finish when their update does; this only bounds a forgotten one.
HORIZON = timedelta(days=365)


def firmware_commands_record(frames: list[tuple[object, dict]], command: str) -> None:
    """Record one ``command`` per ``(target, frame)`` pushed (a re-push of a target records nothing
    new: (update_id, name) is unique). ``target`` needs ``pk``, ``device_id`` and ``rollout``."""
    now = timezone.now()
    ids = [target.pk for target, _ in frames]
    known = set(Command.objects.filter(update_id__in=ids, name=command).values_list("update_id", flat=True))
    fresh = [
        Command(
            device_id=target.device_id, name=command, params=frame, created_at=now, expires_at=now + HORIZON,
            update_id=target.pk, created_by_id=getattr(target.rollout, "created_by_id", None),
        )
        for target, frame in frames
        if target.pk not in known
    ]  # fmt: skip
    if not fresh:
        return
    with transaction.atomic():
        Command.objects.bulk_create(fresh, ignore_conflicts=True)
        # Ours are the rows with this call's timestamp (a concurrent push's have their own).
        ours = Command.objects.filter(update_id__in=[c.update_id for c in fresh], name=command, created_at=now)
        CommandEvent.objects.bulk_create(
            CommandEvent(
                command=row, state=row.state, at=now, via=CommandEvent.Via.FIRMWARE, detail="pushed by a rollout"
            )
            for row in ours.only("pk", "state")
        )


def _outcome(name: str, status: str) -> str | None:
    """The state a firmware command takes for its target's ``status`` (None: stays as it is)."""
    if name == "firmware_cancel":
        return Command.State.SUCCEEDED if status == "cancelled" else None
    return {
        "downloading": Command.State.DELIVERED,
        "downloaded": Command.State.DELIVERED,
        "installing": Command.State.DELIVERED,
        "succeeded": Command.State.SUCCEEDED,
        "failed": Command.State.FAILED,
        "timed_out": Command.State.EXPIRED,
        "cancelled": Command.State.FAILED,
    }.get(status)


def firmware_commands_sync(*, now: datetime | None = None, limit: int = 5000) -> int:
    """Move open firmware commands after their rollout targets; returns how many changed. Each
    change is a conditional UPDATE from the state read, so running it twice changes nothing more."""
    from firmware.models import RolloutTarget  # firmware imports this module for its pushes

    now = now or timezone.now()
    open_ = Command.objects.filter(update_id__isnull=False, state__in=Command.OPEN).select_related("device")
    commands = list(open_.order_by("pk")[:limit])
    targets = {
        pk: (status, detail)
        for pk, status, detail in RolloutTarget.objects.filter(pk__in={c.update_id for c in commands}).values_list(
            "pk", "status", "detail"
        )
    }
    moved = 0
    for command in commands:
        status, detail = targets.get(command.update_id, ("cancelled", "the update was deleted"))
        state = _outcome(command.name, status)
        if state is None or state == command.state:
            continue
        finished = state in Command.FINISHED
        changes = {"state": state, "delivered_at": command.delivered_at or now}
        if finished:
            changes.update(finished_at=now, result={"status": status, "detail": detail})
        with transaction.atomic():
            if Command.objects.filter(pk=command.pk, state=command.state).update(**changes):
                command_transition_record(command, state, now, CommandEvent.Via.FIRMWARE, detail=f"update {status}")
                moved += 1
    return moved
