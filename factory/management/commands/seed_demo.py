"""``manage.py seed_demo``: the demo plant, and each installed app's demo data in it (idempotent).

The plant comes from ``devices.demo.demo_plant`` (every app's demo rows hang off it); then the
``demo_seed(*, plant) -> int`` of each installed app's ``demo.py`` runs, in ``INSTALLED_APPS``
order: accounts (users and their roles), devices (lines, machines, sensors, groups), alerts (rules
and channels), analytics (shifts and reason codes). ``--history`` writes 30 days of plant history
before today (``simulator.backfill``) and lets the simulator fill today (``simulator.history``).
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.demo import demo_logins
from devices.demo import demo_plant
from factory.apps import installed_submodules
from simulator.backfill import DAYS, history_backfill
from simulator.history import history_fill


class Command(BaseCommand):
    help = "Create a demo plant with two lines, a dozen devices and demo users. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument(
            "--history",
            action="store_true",
            help=f"Write {DAYS} days of plant history before today (states, stops with reasons, counters, rollups) "
            "and fill today's telemetry gaps of the demo devices with simulated history from local midnight "
            "(or their last message), so OEE, its trend and the loss Pareto are believable at once "
            "(`make run` does this). Deterministic, and a second run adds nothing.",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates users with printed passwords; it refuses to run when DEBUG=false.")
        with transaction.atomic():
            plant, created = demo_plant()
            created = int(created)
            for module in installed_submodules("demo"):
                if hasattr(module, "demo_seed"):
                    created += module.demo_seed(plant=plant)
        self.stdout.write(
            self.style.SUCCESS(f"Demo data: {created} object(s) created." if created else "Demo data: nothing new.")
        )
        if options["history"]:
            now = timezone.now()
            past = history_backfill(plant=plant, now=now)
            if past["states"] or past["rollups_1h"]:
                self.stdout.write(
                    f"Demo history: {DAYS} days before today: {past['states']} machine states, "
                    f"{past['stop_reasons']} classified stops, {past['readings']} counter readings, "
                    f"{past['rollups_1h']} hourly and {past['rollups_1m']} minute rollups."
                )
            stored = history_fill(plant=plant, now=now)
            if stored:
                self.stdout.write(f"Demo history: {stored} simulated message(s) fill today's gaps (OEE from midnight).")
        self.stdout.write("Demo logins (also in var/demo-credentials.json):")
        for username, password, role in demo_logins():
            self.stdout.write(f"  {username:<9} {password:<24} {role}")
