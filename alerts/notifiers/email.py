"""E-mail through Django's configured backend (SMTP, console, or an ESP through django-anymail)."""

import smtplib

from django.core.mail import EmailMultiAlternatives, get_connection
from rest_framework import serializers

from alerts.notifiers.base import DeliveryError, Message, Notifier, TransientDeliveryError


class EmailNotifier(Notifier):
    """HTML + text e-mail to the route's people and the channel's extra addresses (``config.to``).

    SMTP 5xx replies and refused recipients are permanent; connection errors, timeouts and 4xx
    replies are transient (retried). With nobody to write to (all muted) it sends nothing.
    """

    kind = "email"
    addresses_people = True

    class config_schema(serializers.Serializer):  # noqa: N801
        to = serializers.ListField(child=serializers.EmailField(), required=False, default=list, max_length=50)

    def send(self, message: Message) -> None:
        recipients = sorted(set(self.config.get("to", [])) | set(message.emails))
        if not recipients:
            return  # everyone concerned muted these devices (or the route's roles are empty): nothing to send
        mail = EmailMultiAlternatives(
            subject=message.title, body=message.text, to=recipients, connection=get_connection(timeout=10)
        )
        mail.attach_alternative(message.html, "text/html")
        try:
            mail.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"All recipients refused: {', '.join(sorted(exc.recipients))}", True) from None
        except smtplib.SMTPResponseException as exc:
            text = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            if 500 <= exc.smtp_code < 600:
                raise DeliveryError(text, True) from None
            raise TransientDeliveryError(text) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(f"SMTP unreachable: {type(exc).__name__}: {exc}") from None
