"""The one small interface every notification channel kind implements (STYLE.md §6)."""

from dataclasses import dataclass, field

from rest_framework import serializers

from alerts.exceptions import DeliveryError, TransientDeliveryError

__all__ = ["DeliveryError", "Message", "Notifier", "TransientDeliveryError"]


@dataclass
class Message:
    """What to say, already rendered, and to whom (for person-addressed kinds).

    ``alarms`` holds one plain dict per alarm event in the digest (id, device, rule, severity,
    state, value, raised_at, action, event); ``emails`` the addresses resolved from the route's
    roles and users, minus those who muted the devices concerned. ``idempotency_key`` names the
    delivery, so a receiver can drop a copy sent again after a worker died mid-send.
    """

    plant_id: int
    plant_name: str
    severity: str
    title: str
    text: str
    html: str
    alarms: list[dict]
    emails: list[str] = field(default_factory=list)
    idempotency_key: str = ""  # the same on every attempt of one delivery (webhooks send it)


class Notifier:
    """Sends one ``Message`` through one ``NotificationChannel``.

    Subclasses set ``kind`` and ``config_schema`` (a serializer validating ``channel.config``) and
    implement ``send``, which returns on success and raises ``DeliveryError`` (``permanent=True``
    when retrying cannot help) or ``TransientDeliveryError`` otherwise.
    """

    kind = ""
    addresses_people = False  # True when recipients come from the route's roles/users (e-mail)

    class config_schema(serializers.Serializer):  # noqa: N801 - a nested class read as an attribute
        pass

    def __init__(self, channel):
        self.channel = channel
        self.config = channel.config or {}

    def send(self, message: Message) -> None:
        raise NotImplementedError

    @classmethod
    def public_config(cls, config: dict) -> dict:
        """The config as the API shows it: secrets replaced by a mask."""
        return dict(config)
