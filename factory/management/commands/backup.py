"""``python manage.py backup --out DIR``: the database (one consistent snapshot, while ingest runs),
media (firmware images) and the MQTT broker's dynamic-security file, with a manifest of row
counts and checksums. README "Backup and restore"; ``factory.backup``."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from factory.backup import BackupError, backup_create


class Command(BaseCommand):
    help = "Back up the database, media and broker state into a new directory, with a manifest."

    def add_arguments(self, parser):
        parser.add_argument("--out", required=True, type=Path, help="A new (or empty) directory, e.g. one per date.")
        parser.add_argument(
            "--broker-dir",
            type=Path,
            default=settings.MQTT_BROKER_DIR,
            help="Mosquitto's data directory with dynamic-security.json (default: %(default)s).",
        )
        parser.add_argument("--no-broker", action="store_true", help="Leave the broker's state out.")

    def handle(self, *args, **options):
        try:
            backup_create(
                out=options["out"],
                broker_dir=None if options["no_broker"] else options["broker_dir"],
                say=self.stdout.write,
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from None
