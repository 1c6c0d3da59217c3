"""Alarm events for the live dashboard, published after commit (STYLE.md §10).

Event shapes (the dashboard's alarm console and toasts consume them; keep them exact):
- ``{"kind": "alarm", "id", "device_id", "plant_id", "rule", "severity", "state", "shelved",
  "message", "action", "value", "raised_at", "acknowledged_at"}`` on every alarm transition;
- ``{"kind": "notification", "severity", "title", "body", "alarm_id"}`` from the in-app channel.
"""

import logging
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _group_send(*, plant_id: int, device_id: int | None = None, event: dict) -> None:
    """Fallback for when ``devices.live`` is not there: the same groups and message shape."""
    layer = get_channel_layer()
    if layer is None:
        return
    groups = [f"live.plant.{plant_id}"] + ([f"live.device.{device_id}"] if device_id is not None else [])
    for group in groups:
        try:
            message = {"type": "live.event", "event": event, "plant_id": plant_id, "group": group}
            async_to_sync(layer.group_send)(group, message)
        except Exception:  # the channel layer being down must never fail a committed transition
            logger.warning("alerts live: publishing to %s failed", group, exc_info=True)


def publish(*, plant_id: int, device_id: int | None = None, event: dict) -> None:
    """Publish one live event; call only after commit. Never raises."""
    try:
        from devices.live import live_publish
    except ImportError:
        live_publish = _group_send
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
