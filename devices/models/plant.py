import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not an IANA time zone; use a name such as 'Europe/Berlin' or 'UTC'.")


class Plant(models.Model):
    """A site. Every role, line, device, alarm and rollout belongs to exactly one plant."""

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(
        max_length=64, default="UTC", validators=[validate_time_zone], help_text="IANA name, e.g. Europe/Berlin."
    )
    description = models.TextField(blank=True)
    address = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("operate_plant", "Operate the plant: acknowledge alarms, classify stops, run rollouts"),
            ("manage_plant", "Administer the plant: lines, devices, tokens and members"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class PlantUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian table: faster joins than the generic one on MySQL."""

    content_object = models.ForeignKey(Plant, on_delete=models.CASCADE)


class PlantGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Plant, on_delete=models.CASCADE)


class Line(models.Model):
    """A production line inside a plant."""

    plant = models.ForeignKey(Plant, on_delete=models.PROTECT, related_name="lines")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    position = models.PositiveIntegerField(default=0, help_text="Display order within the plant.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plant_id", "position", "name"]
        constraints = [models.UniqueConstraint(fields=["plant", "name"], name="line_unique_name_per_plant")]

    def __str__(self) -> str:
        return f"{self.plant.name} / {self.name}"
