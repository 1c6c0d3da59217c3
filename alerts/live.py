"""Alarm events for the live dashboard, published after commit (STYLE.md §10).

Event shapes (the dashboard's alarm console and toasts consume them; keep them exact):
- ``{"kind": "alarm", "id", "device_id", "plant_id", "rule", "severity", "state", "shelved",
  "message", "action", "value", "raised_at", "acknowledged_at"}`` on every alarm transition;
- ``{"kind": "notification", "severity", "title", "body", "alarm_id"}`` from the in-app channel.
"""

from datetime import UTC, datetime

from devices.live import live_publish


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def publish(*, plant_id: int, device_id: int | None = None, event: dict) -> None:
    """Publish one live event through ``devices.live`` (the one publishing helper); call only after
    commit. Never raises."""
    live_publish(plant_id=plant_id, device_id=device_id, event=event)


def alarm_event(alarm, now: datetime) -> dict:
    """The ``alarm`` live event for the alarm's current row."""
    return {
        "kind": "alarm",
        "id": alarm.pk,
        "device_id": alarm.device_id,
        "plant_id": alarm.plant_id,
        "rule": alarm.rule.name,
        "severity": alarm.severity,
        "state": alarm.state,
        "shelved": alarm.is_shelved(now),
        "message": alarm.message,
        "action": alarm.rule.action,
        "value": alarm.value,
        "raised_at": _iso(alarm.raised_at),
        "acknowledged_at": _iso(alarm.acknowledged_at),
    }
