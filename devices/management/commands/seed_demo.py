"""Create the demo plant, its lines, machines, sensors, groups and demo users (idempotent)."""

import json
import os
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from accounts.services import member_set_role
from alerts.demo import demo_alarms_seed
from analytics.demo import demo_oee_seed
from devices.models import Device, DeviceGroup, Line, Plant
from devices.services.plants import line_create, plant_create
from devices.services.registry import device_create
from devices.simulator.history import history_fill

PLANT = {"name": "Demo Plant", "time_zone": "Europe/Berlin", "address": "Werkstraße 1, Stuttgart"}
LINES = ["Stamping", "Assembly"]
# uid, name, kind, line, hardware model, ideal cycle time (s)
DEVICES = [
    ("press-01", "Press 1", "machine", "Stamping", "HP-400", "2.5"),
    ("press-02", "Press 2", "machine", "Stamping", "HP-400", "2.5"),
    ("press-03", "Press 3", "machine", "Stamping", "HP-630", "3.0"),
    ("press-04", "Press 4", "machine", "Stamping", "HP-630", "3.0"),
    ("robot-01", "Welding robot 1", "machine", "Assembly", "ARM-6", "12"),
    ("robot-02", "Welding robot 2", "machine", "Assembly", "ARM-6", "12"),
    ("robot-03", "Handling robot", "machine", "Assembly", "ARM-6", "8"),
    ("packer-01", "Packer", "machine", "Assembly", "PK-20", "4"),
    ("temp-01", "Hall temperature", "sensor", "Stamping", "TH-1", None),
    ("vibration-01", "Press 1 vibration", "sensor", "Stamping", "VB-3", None),
    ("power-01", "Assembly power meter", "sensor", "Assembly", "PM-9", None),
    ("gateway-01", "Hall gateway", "gateway", None, "GW-2", None),
]
GROUPS = {"Presses": ["press-01", "press-02", "press-03", "press-04"], "Robots": ["robot-01", "robot-02", "robot-03"]}
# username, role on the demo plant (None: superuser)
USERS = [("admin", None), ("manager", Role.ADMIN), ("operator", Role.OPERATOR), ("viewer", Role.VIEWER)]


class Command(BaseCommand):
    help = "Create a demo plant with two lines, a dozen devices and demo users. Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument(
            "--history",
            action="store_true",
            help="Fill today's telemetry gaps of the demo devices with simulated history from local midnight "
            "(or their last message), so OEE today is believable at once (`make run` does this).",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError("seed_demo creates users with printed passwords; it refuses to run when DEBUG=false.")
        with transaction.atomic():
            created = self._seed()
        credentials = self._credentials()
        self.stdout.write(
            self.style.SUCCESS(f"Demo data: {created} object(s) created." if created else "Demo data: nothing new.")
        )
        if options["history"]:
            stored = history_fill(plant=Plant.objects.get(name=PLANT["name"]), now=timezone.now())
            if stored:
                self.stdout.write(f"Demo history: {stored} simulated message(s) fill today's gaps (OEE from midnight).")
        self.stdout.write("Demo logins (also in var/demo-credentials.json):")
        for username, role in USERS:
            self.stdout.write(f"  {username:<9} {credentials[username]:<24} {role or 'superuser'}")

    def _seed(self) -> int:
        created = 0
        plant = Plant.objects.filter(name=PLANT["name"]).first()
        if plant is None:
            plant, created = plant_create(**PLANT), created + 1
        lines = {}
        for position, name in enumerate(LINES):
            lines[name] = Line.objects.filter(plant=plant, name=name).first()
            if lines[name] is None:
                lines[name], created = line_create(plant=plant, name=name, position=position), created + 1
        for uid, name, kind, line, model, cycle in DEVICES:
            if not Device.objects.filter(uid=uid).exists():
                device_create(
                    uid=uid, name=name, kind=kind, plant=plant, line=lines.get(line), model=model,
                    ideal_cycle_time=Decimal(cycle) if cycle else None, firmware_version="1.0.0",
                )  # fmt: skip
                created += 1
        for name, uids in GROUPS.items():
            group, new = DeviceGroup.objects.get_or_create(plant=plant, name=name)
            # uid is unique across plants: a demo uid taken elsewhere must not pull that device in.
            group.devices.add(*Device.objects.filter(plant=plant, uid__in=uids))
            created += new
        created += demo_alarms_seed(plant=plant)  # alarm rules for the simulator's breakdowns
        created += demo_oee_seed(plant=plant)  # shifts and reason codes: OEE from the simulator's machines
        credentials = self._credentials()
        for username, role in USERS:
            user = User.objects.filter(username=username).first()
            if user is None or username not in credentials:
                credentials[username] = secrets.token_urlsafe(12)
                user = user or User(username=username, email=f"{username}@demo.invalid", is_superuser=role is None)
                created += user.pk is None
                user.is_staff = role is None
                user.set_password(credentials[username])
                user.save()
            if role:
                member_set_role(plant=plant, user=user, role=role)
        self._save_credentials(credentials)
        return created

    @staticmethod
    def _path():
        return settings.VAR_DIR / "demo-credentials.json"

    def _credentials(self) -> dict:
        try:
            return json.loads(self._path().read_text())
        except (OSError, ValueError):
            return {}

    def _save_credentials(self, credentials: dict) -> None:
        self._path().parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(credentials, fh, indent=2)
