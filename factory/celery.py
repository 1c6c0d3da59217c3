"""The Celery application: configured from Django settings (``CELERY_`` namespace), tasks autodiscovered."""

import contextlib
import os
import sys

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")

app = Celery("factory")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.celeryd_init.connect
def json_from_the_first_line(instance=None, **kwargs):
    """``LOG_FORMAT=json``: the worker's first lines (a warning when it runs as root, its start-up)
    come before Django configures logging, so JSON logging starts here; and no banner, which is not JSON."""
    if os.environ.get("LOG_FORMAT") == "json":
        from celery.apps import worker

        from factory.logs import json_line, json_logging_now

        json_logging_now()
        instance.quiet = True

        # Celery's signal handlers print "worker: Warm shutdown (MainProcess)" and the like with
        # safe_say (a raw write, as logging is unsafe in a signal handler): a raw write, as JSON.
        def say(msg, f=sys.__stderr__):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.write(f.fileno(), (json_line("celery.apps.worker", str(msg)) + "\n").encode())

        worker.safe_say = say
