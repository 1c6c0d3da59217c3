"""The ``rollout`` live event: a rollout's progress for the dashboard, built here, published by the live bus.

Event (README "Firmware updates (OTA)" documents it for the browser): ``{"kind": "rollout",
"plant_id", "rollout_id", "name", "version", "state", "current_stage", "stage_count",
"awaiting_approval", "pause_reason", "stages": [{"stage", "total", "counts": {status: n},
"succeeded", "failed", "active", "finished"}], "counts": {status: n}, "failing": [{"update_id",
"device_id", "uid", "status", "detail", "at"}],
"audit": [{"at", "action", "by", "detail"}]}``, a full snapshot, so a browser that missed one
loses nothing.

Services announce a change with ``firmware.signals.rollout_progressed_after_commit``; the bus
(``live.receivers.on_rollout_progressed``) publishes at most one snapshot per
``FIRMWARE_LIVE_INTERVAL`` seconds per rollout and process, the last one after the last change.
"""

from django.db.models import Count

from live.bus import iso

FAILING_SHOWN = 20
AUDIT_SHOWN = 20


def rollout_event(rollout) -> dict:
    """The snapshot of one rollout (four small queries; the counts use the (rollout, stage, status) index)."""
    from firmware.models import RolloutTarget

    rows = rollout.targets.values("stage", "status").annotate(n=Count("id")).order_by("stage")
    stages: dict[int, dict] = {}
    counts: dict[str, int] = {}
    for row in rows:
        entry = stages.setdefault(row["stage"], {"stage": row["stage"], "total": 0, "counts": {}})
        entry["counts"][row["status"]] = row["n"]
        entry["total"] += row["n"]
        counts[row["status"]] = counts.get(row["status"], 0) + row["n"]
    failing = (
        rollout.targets.filter(status__in=RolloutTarget.FAILURES)
        .select_related("device")
        .order_by("-progress_at", "-pk")[:FAILING_SHOWN]
    )
    audit = rollout.events.select_related("by").order_by("-at", "-id")[:AUDIT_SHOWN]
    return {
        "kind": "rollout",
        "plant_id": rollout.plant_id,
        "rollout_id": rollout.pk,
        "name": rollout.name,
        "version": rollout.image.version if rollout.image_id else None,
        "state": rollout.state,
        "current_stage": rollout.current_stage,
        "stage_count": len(rollout.stages),
        "awaiting_approval": rollout.awaiting_approval,
        "pause_reason": rollout.pause_reason,
        "stages": [_with_sums(stages[key]) for key in sorted(stages)],
        "counts": counts,
        "failing": [
            {
                "update_id": t.pk,
                "device_id": t.device_id,
                "uid": t.device.uid,
                "status": t.status,
                "detail": t.detail,
                "at": iso(t.progress_at),
            }
            for t in failing
        ],  # fmt: skip
        "audit": [
            {"at": iso(e.at), "action": e.action, "by": str(e.by) if e.by_id else "system", "detail": e.detail}
            for e in audit
        ],
    }


def _with_sums(stage: dict) -> dict:
    """Adds ``succeeded``, ``failed`` (incl. timed out), ``active`` and ``finished`` for the progress bars."""
    counts = stage["counts"]
    failed = counts.get("failed", 0) + counts.get("timed_out", 0)
    active = sum(counts.get(s, 0) for s in ("notified", "downloading", "downloaded", "installing"))
    succeeded = counts.get("succeeded", 0)
    finished = succeeded + failed + counts.get("cancelled", 0)
    return {**stage, "succeeded": succeeded, "failed": failed, "active": active, "finished": finished}


def rollout_live_events(rollout_id: int) -> list[tuple[int, None, dict]]:
    """The live bus's events for one rollout: its snapshot on its plant (none when it is gone)."""
    from firmware.models import Rollout

    rollout = Rollout.objects.select_related("image").filter(pk=rollout_id).first()
    return [] if rollout is None else [(rollout.plant_id, None, rollout_event(rollout))]


def rollout_snapshots(plant, recent: int = 10) -> list[dict]:
    """Snapshots of a plant's rollouts for the dashboard: every active one and the ``recent`` latest others."""
    from firmware.models import Rollout

    active = (Rollout.State.SCHEDULED, Rollout.State.RUNNING, Rollout.State.PAUSED)
    rollouts = Rollout.objects.filter(plant=plant).select_related("image").order_by("-created_at", "-pk")
    shown = list(rollouts.filter(state__in=active)) + list(rollouts.exclude(state__in=active)[:recent])
    shown.sort(key=lambda r: (r.created_at, r.pk), reverse=True)
    return [rollout_event(rollout) for rollout in shown]
