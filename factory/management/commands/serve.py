"""``python manage.py serve``: Daphne, plus Celery beat in the same process when Celery is eager.

Why one process: with the embedded default (no ``CELERY_BROKER_URL``) Celery is eager, so the
periodic tasks (alarm on/off-delays and no-data timers, escalations, offline marking) run inside
whichever process runs beat. With the in-memory channel layer, live events published there reach
only that process's browsers: a separate ``celery beat`` process would shout into an empty room.
Run beat as a thread of the web server instead, and its events reach every browser (publishing
from that thread is handed to the server's event loop, see ``live.bus``). Its scheduler
(``factory.beat.FactoryScheduler``) runs every periodic task through the worker's registry, all
apps' tasks imported, and logs an unknown or failing one as an error.

With a broker, tasks run on workers and beat is a process of its own (README "Running on the real
services"): this command then starts Daphne alone, unless ``--beat`` asks for the thread anyway.

The MQTT bridge is the same story: with ``MQTT_URL`` set and the in-memory channel layer (no
``REDIS_URL``), its readings' live events and alarms would stay in its own process, so it runs as
a thread here too (``--mqtt-bridge auto``). With Redis, run ``manage.py mqtt_bridge`` on its own.
"""

import logging
import threading

from channels.layers import InMemoryChannelLayer, get_channel_layer
from daphne.cli import CommandLineInterface
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

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
        parser.add_argument(
            "--mqtt-bridge",
            choices=("auto", "on", "off"),
            default="auto",
            help="The MQTT bridge in this process: auto (default) = when MQTT_URL is set and the channel layer "
            "is in-memory (no REDIS_URL), whose live events cannot leave the process.",
        )
        parser.add_argument("application", nargs="?", default="factory.asgi:application", help="ASGI application.")

    def handle(self, *args, **options):
        beat = None
        wanted = options["beat"] == "on" or (options["beat"] == "auto" and settings.CELERY_TASK_ALWAYS_EAGER)
        if wanted:
            beat = start_embedded_beat()
        bridge = None
        in_memory = isinstance(get_channel_layer(), InMemoryChannelLayer)
        if options["mqtt_bridge"] == "on" or (options["mqtt_bridge"] == "auto" and settings.MQTT_URL and in_memory):
            bridge = start_embedded_bridge()
        argv = ["-b", options["bind"], "-p", str(options["port"])]
        if options["access_log"]:
            argv += ["--access-log", options["access_log"]]
        try:
            CommandLineInterface().run([*argv, options["application"]])
        finally:
            if bridge is not None:
                bridge.stop()  # stores and acknowledges what it holds, then disconnects
                bridge.thread.join(30)
            if beat is not None:
                beat.stop()


def start_embedded_beat():
    """Start Celery beat (``settings.CELERY_BEAT_SCHEDULER``) in a daemon thread and return it."""
    from celery.beat import EmbeddedService

    from factory.celery import app

    # Every installed app's tasks.py, here in the main thread before beat's thread needs them: the
    # scheduler runs only registered tasks (factory/beat.py), as a worker would.
    app.autodiscover_tasks(force=True)
    beat = EmbeddedService(app, thread=True, scheduler_cls=settings.CELERY_BEAT_SCHEDULER)
    beat.start()
    logger.info("Celery beat runs in this process (%s).", settings.CELERY_BEAT_SCHEDULER)
    return beat


def start_embedded_bridge():
    """Start the MQTT bridge (``MQTT_URL``, the settings' client id) in a daemon thread and return it."""
    from devices.services.mqtt_bridge import MqttBridge

    if not settings.MQTT_URL:
        raise CommandError("--mqtt-bridge on needs MQTT_URL (e.g. MQTT_URL=mqtt://127.0.0.1:1883).")
    bridge = MqttBridge(settings.MQTT_URL, client_id=settings.MQTT_BRIDGE_CLIENT_ID)
    bridge.thread = threading.Thread(target=bridge.run, name="mqtt-bridge", daemon=True)
    bridge.thread.start()
    logger.info("The MQTT bridge runs in this process (%s).", settings.MQTT_URL)
    return bridge
