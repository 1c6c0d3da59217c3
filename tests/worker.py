"""A real ``celery worker`` process for the end-to-end tests of alerts and firmware: the ``worker``
fixture (loaded as a pytest plugin by the root ``conftest.py``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from conftest import require_service
from tests.waiting import wait_until


@pytest.fixture
def worker(settings, smtp_server):
    """A real ``celery worker`` process on the test database and the configured broker; its e-mail
    goes to ``smtp_server``."""
    require_service("CELERY_BROKER_URL")
    require_service("DATABASE_URL")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    process = start_worker(worker_env(smtp_port=smtp_server.port), purge=True)
    try:
        yield process
    finally:
        stop_worker(process)


def worker_env(smtp_port: int | None = None, **extra: str) -> dict:
    """The environment of a worker on the test database and broker (``extra``: more variables)."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"mysql://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}",
        "CELERY_BROKER_URL": django_settings.CELERY_BROKER_URL,
        "SITE_URL": "http://factory.test",
        **extra,
    }
    if smtp_port is not None:
        env.update(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend", EMAIL_HOST="127.0.0.1",
                   EMAIL_PORT=str(smtp_port))  # fmt: skip
    return env


def start_worker(
    env: dict,
    purge: bool,
    name: str | None = None,
    concurrency: int | None = None,
    log: Path | None = None,
    loglevel: str = "warning",
) -> subprocess.Popen:
    """Start ``celery worker --pool=solo`` (``purge``: empty the queue first; ``concurrency``: the
    prefork pool with that many processes instead, as docker-compose.yml's worker) and wait for its ping.
    ``log``: a file for its output (stdout and stderr), at ``loglevel``."""
    from factory.celery import app

    name = name or f"e2e-{os.getpid()}@localhost"
    pool = f"--concurrency={concurrency}" if concurrency else "--pool=solo"
    command = [sys.executable, "-m", "celery", "-A", "factory", "worker", "-l", loglevel, pool, "-n", name]
    output = log.open("a") if log else subprocess.DEVNULL
    process = subprocess.Popen(  # noqa: S603 - our own venv's celery, fixed arguments
        [*command, "--purge"] if purge else command,
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: app.control.ping([name], timeout=0.5), timeout=40, what="the worker to answer ping")
    except BaseException:
        stop_worker(process)
        raise
    return process


def stop_worker(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def forget_queued_tasks() -> None:
    """Empty the broker: queued tasks, and (Redis) the ones a killed worker left unacknowledged
    (they would come back to a later test's worker after the visibility timeout)."""
    from factory.celery import app

    app.control.purge()
    with app.connection_for_write() as connection:
        client = getattr(connection.default_channel, "client", None)
        if client is not None and hasattr(client, "delete"):
            client.delete("unacked", "unacked_index")
