"""Live rollout progress for the dashboard: the ``rollout`` event kind on the plant's live stream.

Event (README "Firmware updates (OTA)" documents it for the browser): ``{"kind": "rollout",
"plant_id", "rollout_id", "name", "version", "state", "current_stage", "stage_count",
"awaiting_approval", "pause_reason", "stages": [{"stage", "total", "counts": {status: n},
"succeeded", "failed", "active", "finished"}], "counts": {status: n}, "failing": [{"update_id",
"device_id", "uid", "status", "detail", "at"}],
"audit": [{"at", "action", "by", "detail"}]}``, a full snapshot, so a browser that missed one
loses nothing.

A 5,000-device stage reports thousands of statuses a second; the browser needs a few pictures a
second. ``rollout_publish_after_commit`` therefore publishes at most once per
``FIRMWARE_LIVE_INTERVAL`` seconds (default 0.5) per rollout and process: the first change
publishes at once (leading edge), changes during the interval are folded into one snapshot taken
when it ends (trailing edge, from a timer thread), so the last picture is always the final one.
"""

import logging
import threading
import time

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from devices.live import iso, live_publish

logger = logging.getLogger(__name__)
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


def rollout_publish(rollout_id: int) -> None:
    """Publish the rollout's snapshot now (a gone rollout publishes nothing). Never raises."""
    from firmware.models import Rollout

    try:
        rollout = Rollout.objects.select_related("image").filter(pk=rollout_id).first()
        if rollout is not None:
            live_publish(plant_id=rollout.plant_id, event=rollout_event(rollout))
    except Exception:  # the dashboard is a view of the rollout, never a reason to fail it
        logger.exception("firmware: could not publish rollout %s", rollout_id)


class _Coalescer:
    """At most one publication per ``interval`` per rollout in this process; the last change always shows."""

    def __init__(self):
        self.lock = threading.Lock()
        self.last: dict[int, float] = {}
        self.waiting: set[int] = set()

    def __call__(self, rollout_id: int) -> None:
        interval = getattr(settings, "FIRMWARE_LIVE_INTERVAL", 0.5)
        with self.lock:
            if rollout_id in self.waiting:
                return  # the timer's snapshot will include this change
            wait = self.last.get(rollout_id, -interval) + interval - time.monotonic()
            if interval <= 0 or wait <= 0:
                self.last[rollout_id] = time.monotonic()
            else:
                self.waiting.add(rollout_id)
                timer = threading.Timer(wait, self._trailing, (rollout_id,))
                timer.daemon = True
                timer.start()
                return
        rollout_publish(rollout_id)

    def _trailing(self, rollout_id: int) -> None:
        with self.lock:
            self.waiting.discard(rollout_id)
            self.last[rollout_id] = time.monotonic()
        try:
            rollout_publish(rollout_id)
        finally:
            connection.close()  # this timer thread's own connection


_coalesce = _Coalescer()


def rollout_publish_after_commit(rollout_id: int) -> None:
    """After the current transaction commits, publish the rollout's progress (coalesced, see above)."""
    transaction.on_commit(lambda: _coalesce(rollout_id))


def rollout_snapshots(plant, recent: int = 10) -> list[dict]:
    """Snapshots of a plant's rollouts for the dashboard: every active one and the ``recent`` latest others."""
    from firmware.models import Rollout

    active = (Rollout.State.SCHEDULED, Rollout.State.RUNNING, Rollout.State.PAUSED)
    rollouts = Rollout.objects.filter(plant=plant).select_related("image").order_by("-created_at", "-pk")
    shown = list(rollouts.filter(state__in=active)) + list(rollouts.exclude(state__in=active)[:recent])
    shown.sort(key=lambda r: (r.created_at, r.pk), reverse=True)
    return [rollout_event(rollout) for rollout in shown]
