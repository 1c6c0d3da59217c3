"""JSON POST to a URL, signed with HMAC-SHA256 so the receiver can verify it came from us.

Headers: ``X-Factory-Timestamp: <unix seconds>`` and ``X-Factory-Signature: sha256=<hex>``
where hex is HMAC-SHA256(secret, "<timestamp>." + body). The receiver recomputes it with its
copy of the secret, compares in constant time and rejects old timestamps (replays).
"""

import hashlib
import hmac
import json
import time

from django.conf import settings
from django.core.validators import URLValidator
from rest_framework import serializers

from alerts.notifiers.base import DeliveryError, Message, Notifier
from alerts.notifiers.egress import validate_public_url
from alerts.notifiers.http import post

MASK = "********"


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookNotifier(Notifier):
    """POSTs ``{"plant", "severity", "title", "text", "alarms": [...], "idempotency_key"}`` to ``config.url``.

    ``idempotency_key`` (also the ``Idempotency-Key`` header) is the same on every attempt of one
    delivery: after a worker died mid-send the message may come twice, and the receiver drops the
    second copy by it.

    ``config.secret`` signs the body (else ``NOTIFIER_WEBHOOK_SECRET``); ``config.timeout``
    seconds (default ``NOTIFIER_WEBHOOK_TIMEOUT``). The URL must reach a public address (or an
    allowlisted one) when the channel is saved and again at each send; redirects are not followed.
    """

    kind = "webhook"

    class config_schema(serializers.Serializer):  # noqa: N801
        url = serializers.CharField(
            max_length=500,
            validators=[URLValidator(schemes=["http", "https"]), validate_public_url],
            help_text="Must resolve to public addresses (or be allowlisted in NOTIFIER_INTERNAL_ALLOWLIST).",
        )
        secret = serializers.CharField(min_length=16, max_length=200, required=False, write_only=True)
        timeout = serializers.FloatField(min_value=1, max_value=30, required=False)

    @classmethod
    def public_config(cls, config: dict) -> dict:
        return {**config, "secret": MASK} if config.get("secret") else dict(config)

    def send(self, message: Message) -> None:
        secret = self.config.get("secret") or settings.NOTIFIER_WEBHOOK_SECRET
        if not secret:
            raise DeliveryError("No signing secret: set the channel's secret or NOTIFIER_WEBHOOK_SECRET.", True)
        body = json.dumps(
            {"plant": message.plant_name, "plant_id": message.plant_id, "severity": message.severity,
             "title": message.title, "text": message.text, "alarms": message.alarms,
             "idempotency_key": message.idempotency_key},
            separators=(",", ":"),
        ).encode()  # fmt: skip
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "SmartFactoryIoT-Webhook/1",
            "X-Factory-Timestamp": timestamp,
            "X-Factory-Signature": signature(secret, timestamp, body),
            "Idempotency-Key": message.idempotency_key,
        }
        post(self.config["url"], body, headers, float(self.config.get("timeout") or settings.NOTIFIER_WEBHOOK_TIMEOUT))
