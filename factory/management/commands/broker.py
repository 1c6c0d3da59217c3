"""``python manage.py broker`` (``make broker``): Mosquitto in the foreground, configured as production.

``deploy/mosquitto.conf`` with this machine's paths: no anonymous clients, the dynamic-security
plugin, the device listener on ``--port`` (``MQTT_PORT``, default 1883) and the platform listener
on ``--platform-port`` (default the next port, loopback only), persistence under
``VAR_DIR/mosquitto``. The platform's and the bridge's credentials are created there on first
start; the settings find them when ``MQTT_URL`` names this broker (README "MQTT broker").
"""

import os
import shutil

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from factory import mosquitto


class Command(BaseCommand):
    help = "Run Mosquitto in the foreground with the production configuration (authentication, ACLs)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(os.environ.get("MQTT_PORT") or 1883))
        parser.add_argument("--platform-port", type=int, default=None, help="Default: --port + 1.")
        parser.add_argument("--host", default=os.environ.get("MQTT_HOST") or "127.0.0.1", help="Device listener.")
        parser.add_argument(
            "--tls-port",
            type=int,
            default=int(os.environ.get("MQTT_TLS_PORT") or 8883),
            help="MQTT over TLS for devices, when `make certs` has made var/certs (default 8883).",
        )

    def handle(self, *args, **options):
        problem = mosquitto.missing()
        if problem:
            raise CommandError(problem)
        port = options["port"]
        platform_port = options["platform_port"] or port + 1
        certs_dir = settings.VAR_DIR / "certs"
        certs = {"cert": certs_dir / "server.crt", "key": certs_dir / "server.key"}
        tls = all(path.exists() for path in certs.values())
        config = mosquitto.prepare(
            directory=settings.MQTT_BROKER_DIR,
            device_port=port,
            platform_port=platform_port,
            host=options["host"],
            platform_username=settings.MQTT_PLATFORM_USERNAME,
            tls_port=options["tls_port"] if tls else None,
            certs=certs if tls else None,
        )
        if tls:
            self.stdout.write(
                f"Devices over TLS on {options['host']}:{options['tls_port']} "
                f"(clients trust {certs_dir / 'ca.crt'}: MQTT_CA_FILE)."
            )
        self.stdout.write(
            f"Mosquitto: devices on {options['host']}:{port}, the platform on 127.0.0.1:{platform_port}; "
            f"data and credentials in {settings.MQTT_BROKER_DIR}.\n"
            f"In another shell: MQTT_URL=mqtt://127.0.0.1:{port} make run   (Ctrl-C stops the broker)"
        )
        self.stdout.flush()
        # Replace this process: Ctrl-C and SIGTERM reach Mosquitto, which saves its data on the way out.
        os.execv(shutil.which("mosquitto"), ["mosquitto", "-c", str(config)])  # noqa: S606
