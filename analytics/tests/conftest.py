import pytest

from devices.services import ingest


@pytest.fixture(autouse=True)
def _fresh_metric_cache(settings):
    """Metric ids are cached per process; test transactions roll the rows back, so start clean."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.OEE_MINOR_STOP_SECONDS = 120
    ingest._metric_ids.clear()
    yield
    ingest._metric_ids.clear()


class _Mailbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server(settings):
    """A real aiosmtpd server on a free port; Django's SMTP backend points at it (as in alerts' tests)."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD, settings.EMAIL_USE_TLS = "", "", False
    yield mailbox
    controller.stop()
