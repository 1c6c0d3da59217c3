"""``python manage.py mqtt_reconcile``: make the MQTT broker's clients and ACLs match the registry.

Run at deploy and any time after; a second run changes nothing. See ``devices.services.broker``.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from devices.services.broker import BrokerError, broker_reconcile


class Command(BaseCommand):
    help = "Make the MQTT broker (Mosquitto dynamic security) match the device registry; idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Say what would change; change nothing.")
        parser.add_argument(
            "--wait", type=float, default=0, help="Seconds to keep retrying while the broker is not up yet (deploy)."
        )

    def handle(self, *args, **options):
        deadline = time.monotonic() + options["wait"]
        while True:
            try:
                report = broker_reconcile(dry_run=options["dry_run"])
                break
            except BrokerError as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(str(exc)) from None
                time.sleep(1)  # the broker container is still starting
        prefix = "would: " if options["dry_run"] else ""
        for change in report.changes:
            self.stdout.write(f"{prefix}{change}")
        if report.need_token:
            self.stdout.write(
                self.style.WARNING(
                    f"{len(report.need_token)} device(s) have tokens the broker never saw (issued before the "
                    "broker was provisioned, or its data was lost); issue or rotate a token for each to give it "
                    f"MQTT access: {', '.join(report.need_token[:20])}{' …' if len(report.need_token) > 20 else ''}"
                )
            )
        self.stdout.write(f"{len(report.changes)} change(s), {report.unchanged} device(s) already in step.")
