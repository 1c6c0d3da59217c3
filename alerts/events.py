"""The alerts app's live events, built here and published by the live bus (``live.bus``).

Event shapes (the dashboard's alarm console and toasts consume them; keep them exact):
- ``{"kind": "alarm", "id", "device_id", "plant_id", "rule", "severity", "state", "shelved",
  "message", "action", "value", "raised_at", "acknowledged_at"}`` on every alarm transition
  (``alerts.signals.alarm_changed`` → ``live.receivers.on_alarm_changed``);
- ``{"kind": "notification", "severity", "title", "body", "alarm_id"}`` from the in-app channel
  (``alerts.notifiers.inapp``).
"""

from datetime import datetime

from live.bus import iso


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
        "raised_at": iso(alarm.raised_at),
        "acknowledged_at": iso(alarm.acknowledged_at),
    }
