"""SMS through a Twilio-style REST API: form POST to ``<SMS_API_URL>/Accounts/<sid>/Messages.json``.

The API URL and credentials are deployment secrets (``SMS_API_URL``, ``SMS_ACCOUNT_SID``,
``SMS_AUTH_TOKEN``/``SMS_AUTH_TOKEN_FILE``, ``SMS_FROM``); a channel only holds phone numbers.
"""

import base64
import urllib.parse

from django.conf import settings
from rest_framework import serializers

from alerts.notifiers.base import DeliveryError, Message, Notifier
from alerts.notifiers.http import post

SMS_MAX_CHARS = 480  # three concatenated segments


class SmsNotifier(Notifier):
    """One short text per number in ``config.to`` (E.164, e.g. ``+4915112345678``)."""

    kind = "sms"

    class config_schema(serializers.Serializer):  # noqa: N801
        to = serializers.ListField(
            child=serializers.RegexField(r"^\+[1-9]\d{6,14}$", error_messages={"invalid": "Use E.164: +<digits>."}),
            min_length=1,
            max_length=20,
        )

    def send(self, message: Message) -> None:
        url, sid, token = settings.SMS_API_URL, settings.SMS_ACCOUNT_SID, settings.SMS_AUTH_TOKEN
        if not (url and sid and token and settings.SMS_FROM):
            raise DeliveryError(
                "SMS is not configured: set SMS_API_URL, SMS_ACCOUNT_SID, SMS_AUTH_TOKEN, SMS_FROM.", True
            )
        endpoint = f"{url.rstrip('/')}/Accounts/{urllib.parse.quote(sid)}/Messages.json"
        auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
        headers = {"Authorization": f"Basic {auth}", "Content-Type": "application/x-www-form-urlencoded"}
        text = f"{message.title}\n{message.text}"[:SMS_MAX_CHARS]
        for number in self.config["to"]:
            body = urllib.parse.urlencode({"To": number, "From": settings.SMS_FROM, "Body": text}).encode()
            post(endpoint, body, headers, settings.NOTIFIER_SMS_TIMEOUT)
