"""``python manage.py serve``: Daphne, plus Celery beat in the same process when Celery is eager.

Why one process: with the embedded default (no ``CELERY_BROKER_URL``) Celery is eager, so the
periodic tasks (alarm on/off-delays and no-data timers, escalations, offline marking) run inside
whichever process runs beat. With the in-memory channel layer, live events published there reach
only that process's browsers: a separate ``celery beat`` process would shout into an empty room.
Run beat as a thread of the web server instead, and its events reach every browser (publishing
from that thread is handed to the server's event loop, see ``devices.live``).

With a broker, tasks run on workers and beat is a process of its own (README "Running on the real
services"): this command then starts Daphne alone, unless ``--beat`` asks for the thread anyway.
"""

import logging

from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run Daphne; with eager Celery (the embedded default) also Celery beat, as a thread of this process."

    def add_arguments(self, parser):
        parser.add_argument("-b", "--bind", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("-p", "--port", type=int, default=8000, help="Port (default 8000).")
        parser.add_argument("--access-log", default=None, help="Daphne's access log file ('-' for stdout).")
        parser.add_argument(
            "--beat",
            choices=("auto", "on", "off"),
            default="auto",
            help="Celery beat in this process: auto (default) = only when Celery is eager (no broker).",
        )
        parser.add_argument("application", nargs="?", default="factory.asgi:application", help="ASGI application.")

    def handle(self, *args, **options):
        beat = None
        wanted = options["beat"] == "on" or (options["beat"] == "auto" and settings.CELERY_TASK_ALWAYS_EAGER)
        if wanted:
            beat = start_embedded_beat()
        argv = ["-b", options["bind"], "-p", str(options["port"])]
        if options["access_log"]:
            argv += ["--access-log", options["access_log"]]
        try:
            CommandLineInterface().run([*argv, options["application"]])
        finally:
            if beat is not None:
                beat.stop()


def start_embedded_beat():
    """Start Celery beat (``settings.CELERY_BEAT_SCHEDULER``) in a daemon thread and return it."""
    from celery.beat import EmbeddedService

    from factory.celery import app

    beat = EmbeddedService(app, thread=True, scheduler_cls=settings.CELERY_BEAT_SCHEDULER)
    beat.start()
    logger.info("Celery beat runs in this process (%s).", settings.CELERY_BEAT_SCHEDULER)
    return beat
