"""A real SMTP server for the tests that send e-mail (alarms, reports, rollouts): the ``smtp_server``
fixture (loaded as a pytest plugin by the root ``conftest.py``) and helpers to read what it got."""

import asyncio
import threading
from email import message_from_bytes

import pytest

from tests.servers import free_port


class Mailbox:
    """What the server received: ``messages`` are aiosmtpd envelopes; addresses in ``refuse`` are
    answered "550 no such user". With ``hold = n``, the n-th message is received (kept in
    ``messages``) but its "250 OK" waits until ``release`` is set: the sender is mid-send, not knowing
    whether the message went out (where a worker is killed in the crash tests)."""

    def __init__(self):
        self.messages = []
        self.refuse = set()
        self.port = None
        self.hold: int | None = None
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's hook name
        if address in self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope)
        if self.hold is not None and len(self.messages) == self.hold:
            await asyncio.to_thread(self.release.wait, 60)
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    """A real aiosmtpd server on a free port; Django's SMTP backend is pointed at it."""
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD, settings.EMAIL_USE_TLS = "", "", False
    mailbox.port = controller.port
    yield mailbox
    mailbox.release.set()
    controller.stop()


def parsed(envelope):
    """The e-mail message of an aiosmtpd envelope."""
    return message_from_bytes(envelope.content)


def body_text(message) -> str:
    """The text/plain part of ``message``, decoded."""
    parts = [p for p in message.walk() if p.get_content_type() == "text/plain"]
    return parts[0].get_payload(decode=True).decode()
