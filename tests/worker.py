"""A real ``celery worker`` process for the end-to-end tests of alerts and firmware: the ``worker``
fixture (loaded as a pytest plugin by the root ``conftest.py``)."""

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.db import connection

from conftest import require_service
from tests.waiting import wait_until


@pytest.fixture
def worker(settings, smtp_server):
    """A real ``celery worker`` process on the test database and the configured broker; its e-mail
    goes to ``smtp_server``."""
    from factory.celery import app

    require_service("CELERY_BROKER_URL")
    require_service("DATABASE_URL")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    db = connection.settings_dict
    name = f"e2e-{os.getpid()}@localhost"
    env = {
        **os.environ,
        "DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}",
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(smtp_server.port),
        "SITE_URL": "http://factory.test",
    }
    command = [sys.executable, "-m", "celery", "-A", "factory", "worker", "-l", "warning", "--pool=solo"]
    process = subprocess.Popen(  # noqa: S603 - our own venv's celery, fixed arguments
        [*command, "-n", name, "--purge"],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: app.control.ping([name], timeout=0.5), timeout=40, what="the worker to answer ping")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
