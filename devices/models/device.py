from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

uid_validator = RegexValidator(
    r"^[a-z0-9][a-z0-9._-]{0,63}\Z",
    "Use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. press-07).",
)


class Device(models.Model):
    """A machine, sensor or gateway that sends telemetry with its own tokens."""

    class Kind(models.TextChoices):
        MACHINE = "machine", "Machine"
        SENSOR = "sensor", "Sensor"
        GATEWAY = "gateway", "Gateway"

    uid = models.CharField(
        max_length=64, unique=True, validators=[uid_validator], help_text="Stable device id, e.g. press-07."
    )
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MACHINE)
    plant = models.ForeignKey("devices.Plant", on_delete=models.PROTECT, related_name="devices")
    line = models.ForeignKey("devices.Line", on_delete=models.PROTECT, related_name="devices", null=True, blank=True)
    model = models.CharField("hardware model", max_length=100, blank=True)
    serial_number = models.CharField(max_length=100, blank=True)
    firmware_version = models.CharField(max_length=64, blank=True)
    ideal_cycle_time = models.DecimalField(
        max_digits=10,
        decimal_places=3,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.001"))],
        help_text="Seconds per piece at ideal speed (machines).",
    )
    expected_interval = models.PositiveIntegerField(
        null=True, blank=True, help_text="Seconds between messages; offline after 3 missed. Empty: plant default."
    )
    enabled = models.BooleanField(default=True, help_text="Disabled devices are refused at ingest.")
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)
    online = models.BooleanField(
        default=False,
        editable=False,
        help_text="Heard from within 3 expected intervals (kept by ingest and a beat task).",
    )
    state = models.CharField(max_length=16, blank=True, editable=False, help_text="Current machine state.")
    state_since = models.DateTimeField(null=True, blank=True, editable=False)
    location = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["uid"]
        indexes = [models.Index(fields=["plant", "line"], name="device_plant_line")]

    def __str__(self) -> str:
        return self.uid

    def clean(self) -> None:
        if self.line_id is not None and self.plant_id is not None and self.line.plant_id != self.plant_id:
            raise ValidationError({"line": f"Line '{self.line.name}' belongs to another plant than this device."})

    @property
    def expected_interval_seconds(self) -> int:
        return self.expected_interval or settings.DEVICE_EXPECTED_INTERVAL

    def is_online(self, now: datetime) -> bool:
        if self.last_seen_at is None:
            return False
        return now - self.last_seen_at <= timedelta(seconds=3 * self.expected_interval_seconds)


class DeviceGroup(models.Model):
    """A named set of devices of one plant, for batch operations, alert scopes and rollouts."""

    plant = models.ForeignKey("devices.Plant", on_delete=models.PROTECT, related_name="device_groups")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    devices = models.ManyToManyField(Device, related_name="groups", blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plant_id", "name"]
        constraints = [models.UniqueConstraint(fields=["plant", "name"], name="devicegroup_unique_name_per_plant")]

    def __str__(self) -> str:
        return self.name
