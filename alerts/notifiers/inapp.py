"""In-app toasts: a ``notification`` live event to the plant's dashboard (through the live bus)."""

from alerts.notifiers.base import Message, Notifier
from live.bus import publish


class InAppNotifier(Notifier):
    """Publishes ``{"kind": "notification", "severity", "title", "body", "alarm_id"}`` to the plant.

    ``alarm_id`` is the first alarm of the digest. The channel layer being down is logged by the
    publisher and not retried: a toast that comes minutes late is worse than none.
    """

    kind = "inapp"

    def send(self, message: Message) -> None:
        alarm_id = message.alarms[0]["id"] if message.alarms else None
        event = {"kind": "notification", "severity": message.severity, "title": message.title,
                 "body": message.text, "alarm_id": alarm_id}  # fmt: skip
        publish(plant_id=message.plant_id, event=event)
