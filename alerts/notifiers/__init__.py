"""The notifier registry: channel kind → dotted path, imported lazily (STYLE.md §6).

A kind can be switched off with ``NOTIFIER_<KIND>_ENABLED=false``: its channels are then skipped
and cannot be created.
"""

from django.conf import settings
from django.utils.module_loading import import_string

NOTIFIERS = {
    "email": "alerts.notifiers.email.EmailNotifier",
    "sms": "alerts.notifiers.sms.SmsNotifier",
    "webhook": "alerts.notifiers.webhook.WebhookNotifier",
    "inapp": "alerts.notifiers.inapp.InAppNotifier",
}


def kind_enabled(kind: str) -> bool:
    return kind in NOTIFIERS and getattr(settings, f"NOTIFIER_{kind.upper()}_ENABLED", True)


def enabled_kinds() -> list[str]:
    return [kind for kind in NOTIFIERS if kind_enabled(kind)]


def notifier_class(kind: str):
    """The notifier class of ``kind``; raises ``KeyError`` for an unknown kind."""
    return import_string(NOTIFIERS[kind])
