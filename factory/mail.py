"""The e-mail backend of a development machine without SMTP (``make run``; no ``EMAIL_HOST`` set).

Django's console backend prints every message whole, MIME parts and HTML included, which buries
the rest of ``make run``'s console. This one prints one line per message (recipients, subject and
where to read it) and writes the full message as an ``.eml`` file under ``VAR_DIR/mail/``.
"""

import itertools
import os
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.console import EmailBackend as ConsoleEmailBackend

_sequence = itertools.count(1)


def mail_dir() -> Path:
    """Where the full messages go (created on first use)."""
    folder = Path(settings.VAR_DIR) / "mail"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class SummaryEmailBackend(ConsoleEmailBackend):
    """One line per message on the stream (stdout by default); the message itself in a file."""

    def write_message(self, message):
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = mail_dir() / f"{stamp}-{os.getpid()}-{next(_sequence)}.eml"
        path.write_bytes(message.message().as_bytes())
        recipients = ", ".join(message.recipients())
        self.stream.write(f"e-mail to {recipients}: {message.subject!r} (full text: {path})\n")
