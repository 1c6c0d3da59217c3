"""The development e-mail backend (factory/mail.py): one line on the console, the full message in VAR_DIR."""

import io
import re
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMultiAlternatives


def test_prints_one_line_per_message_and_writes_the_full_message_under_var_dir(settings, tmp_path):
    from factory.mail import SummaryEmailBackend

    settings.VAR_DIR = tmp_path
    stream = io.StringIO()
    backend = SummaryEmailBackend(stream=stream)
    mail = EmailMultiAlternatives(
        subject="[WARNING] press-01: Vibration high",
        body="What to do: Stop and check the bearing.\nOpen: http://127.0.0.1:8100/plants/1/alarms/#alarm-7",
        to=["oncall@example.com", "operator@example.com"],
        connection=backend,
    )
    mail.attach_alternative("<p>Vibration high</p>", "text/html")
    assert mail.send() == 1

    lines = stream.getvalue().splitlines()
    assert len(lines) == 1, lines
    summary = "e-mail to oncall@example.com, operator@example.com: '[WARNING] press-01: Vibration high'"
    assert lines[0].startswith(summary)
    path = Path(re.search(r"full text: (.+)\)$", lines[0]).group(1))
    assert path.parent == tmp_path / "mail"
    written = path.read_text()
    assert "Subject: [WARNING] press-01: Vibration high" in written
    assert "http://127.0.0.1:8100/plants/1/alarms/#alarm-7" in written
    assert "<p>Vibration high</p>" in written


def setting_under(tmp_path, expression: str, **env: str) -> str:
    """``expression`` over the settings of a fresh ``manage.py`` run under exactly ``env``."""
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "VAR_DIR": str(tmp_path / "var"), **env}
    code = f"from django.conf import settings; import logging; print({expression})"
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=settings.BASE_DIR, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]  # after shell's "N objects imported" note


def test_is_the_default_backend_only_without_an_email_host(tmp_path):
    """make run (no EMAIL_HOST) gets the summary backend; with EMAIL_HOST it is SMTP."""
    assert setting_under(tmp_path, "settings.EMAIL_BACKEND") == "factory.mail.SummaryEmailBackend"
    smtp = setting_under(tmp_path, "settings.EMAIL_BACKEND", EMAIL_HOST="smtp.example.com")
    assert smtp == "django.core.mail.backends.smtp.EmailBackend"


def test_beat_announces_due_tasks_only_when_asked(tmp_path):
    """Beat's "Sending due task" lines (INFO) stay off make run's console unless CELERY_BEAT_LOG_LEVEL says."""
    level = 'logging.getLevelName(logging.getLogger("celery.beat").getEffectiveLevel())'
    assert setting_under(tmp_path, level) == "WARNING"
    assert setting_under(tmp_path, level, CELERY_BEAT_LOG_LEVEL="INFO") == "INFO"
