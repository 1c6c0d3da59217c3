"""``python manage.py mqtt_bridge``: MQTT telemetry (``factory/devices/<uid>/telemetry``) into the database.

Runs until SIGTERM or SIGINT; then it stores and acknowledges what it holds and disconnects
(a second signal exits at once: unacknowledged messages are redelivered to the next run).
"""

import os
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from devices.services.mqtt_bridge import MqttBridge
from factory.metrics_export import start_exporter


class Command(BaseCommand):
    help = "Store telemetry from factory/devices/+/telemetry on MQTT_URL; invalid messages become dead letters."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500, help="Messages per transaction (default 500).")
        parser.add_argument(
            "--flush-ms", type=int, default=50, help="Longest wait for a batch to fill, in ms (default 50)."
        )
        parser.add_argument(
            "--client-id",
            default=settings.MQTT_BRIDGE_CLIENT_ID,
            help="MQTT client id: the broker keeps this session's messages while the bridge is away "
            "(default MQTT_BRIDGE_CLIENT_ID).",
        )
        parser.add_argument(
            "--shared-group",
            help="Subscribe as a member of this MQTT shared subscription group ($share/<group>/...): the broker "
            "spreads the messages over the group's bridges. Give each process its own --client-id.",
        )
        parser.add_argument(
            "--summary-seconds", type=float, default=60.0, help="Interval of the one-line summary log (default 60)."
        )

    def handle(self, *args, **options):
        if not settings.MQTT_URL:
            raise CommandError("MQTT_URL is not set: point it at the broker, e.g. MQTT_URL=mqtt://127.0.0.1:1883.")
        if options["batch_size"] < 1 or options["flush_ms"] < 0:
            raise CommandError("--batch-size must be at least 1 and --flush-ms at least 0.")
        group = options["shared_group"]
        if group is not None and (not group or any(char in group for char in "/+#")):
            raise CommandError("--shared-group must be a non-empty name without '/', '+' or '#'.")
        bridge = MqttBridge(
            settings.MQTT_URL,
            client_id=options["client_id"],
            batch_size=options["batch_size"],
            flush_interval=options["flush_ms"] / 1000,
            summary_interval=options["summary_seconds"],
            shared_group=group,
        )
        start_exporter("mqtt-bridge")  # METRICS_PORT: this host's metrics for Prometheus (README "Metrics")
        # The bridge runs in a worker thread and the main thread only waits: a signal handler then
        # never interrupts the bridge while it holds one of its locks.
        failures: list[BaseException] = []

        def run():
            try:
                bridge.run()
            except BaseException as exc:
                failures.append(exc)
                raise

        worker = threading.Thread(target=run, name="mqtt-bridge", daemon=True)

        def on_signal(signum, frame):
            if bridge.stopping.is_set():
                os._exit(1)  # second signal: leave now, the broker keeps what was not acknowledged
            self.stderr.write(f"{signal.Signals(signum).name}: storing what is held, then stopping.")
            bridge.stop()

        previous = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            worker.start()
            while worker.is_alive():
                worker.join(0.5)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if failures:
            raise CommandError(f"The MQTT bridge failed: {failures[0]!r}")
