"""``python manage.py certs`` (``make certs``): a local CA and a server certificate for development.

Writes ``VAR_DIR/certs/ca.crt``, ``ca.key``, ``server.crt`` and ``server.key`` (keys 0600). ``make
broker`` then also listens for MQTT over TLS; clients trust the CA with ``MQTT_CA_FILE``.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from factory.certs import make_certs


class Command(BaseCommand):
    help = "Create a local CA and a server certificate (for the broker and the reverse proxy) under VAR_DIR/certs."

    def add_arguments(self, parser):
        parser.add_argument(
            "--hosts",
            default="localhost,127.0.0.1",
            help="Comma-separated host names and addresses the server certificate is valid for.",
        )

    def handle(self, *args, **options):
        hosts = [h.strip() for h in options["hosts"].split(",") if h.strip()]
        if not hosts:
            raise CommandError("--hosts needs at least one host name or address, e.g. --hosts localhost,127.0.0.1")
        paths = make_certs(settings.VAR_DIR / "certs", hosts)
        self.stdout.write(
            f"Server certificate for {', '.join(hosts)}: {paths['cert']} (key {paths['key']}).\n"
            f"Clients trust the CA: MQTT_CA_FILE={paths['ca']}"
        )
