"""``python manage.py restore --from DIR``: a backup made by ``manage.py backup`` into the configured
(empty) database, ``MEDIA_ROOT`` and the broker's data directory, verified against its manifest.
README "Backup and restore"; ``factory.backup``."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from factory.backup import BackupError, backup_restore


class Command(BaseCommand):
    help = "Restore a backup into an empty database, media directory and broker directory; verify it."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", required=True, type=Path, help="A backup directory.")
        parser.add_argument(
            "--broker-dir",
            type=Path,
            default=settings.MQTT_BROKER_DIR,
            help="Where Mosquitto's dynamic-security.json goes (stop Mosquitto first; default: %(default)s).",
        )
        parser.add_argument("--no-broker", action="store_true", help="Leave the broker's state alone.")
        parser.add_argument(
            "--force", action="store_true", help="Replace a database, media or broker state that is not empty."
        )

    def handle(self, *args, **options):
        try:
            backup_restore(
                source=options["source"],
                force=options["force"],
                broker_dir=None if options["no_broker"] else options["broker_dir"],
                say=self.stdout.write,
            )
        except BackupError as exc:
            raise CommandError(str(exc)) from None
