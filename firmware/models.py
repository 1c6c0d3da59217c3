"""Firmware images, rollouts and the per-device updates (RolloutTarget) with their history."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

# Semantic Versioning 2.0.0: MAJOR.MINOR.PATCH, optional -pre-release and +build metadata, no
# leading zeros in numeric parts.
_NUM = r"(0|[1-9]\d*)"
_PRE = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER_RE = re.compile(rf"^{_NUM}\.{_NUM}\.{_NUM}(?:-{_PRE}(?:\.{_PRE})*)?(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?\Z")


def validate_semver(value: str) -> None:
    if not SEMVER_RE.match(value or ""):
        raise ValidationError(f"{value!r} is not a semantic version; use MAJOR.MINOR.PATCH, e.g. 2.4.1 or 2.5.0-rc.1.")


def firmware_storage():
    """The storage firmware files live in (``FIRMWARE_STORAGE``: a ``STORAGES`` alias)."""
    from django.core.files.storage import storages

    return storages[settings.FIRMWARE_STORAGE]


def firmware_upload_to(instance, filename: str) -> str:
    return f"firmware/{instance.plant_id}/{instance.sha256}.bin"


class FirmwareImage(models.Model):
    """One firmware build for a plant: immutable file with its SHA-256, size and optional Ed25519 signature."""

    plant = models.ForeignKey("devices.Plant", on_delete=models.PROTECT, related_name="firmware_images")
    version = models.CharField(max_length=64, validators=[validate_semver])
    hardware_models = models.JSONField(default=list, help_text="Hardware models this image runs on.")
    release_notes = models.TextField(blank=True)
    file = models.FileField(upload_to=firmware_upload_to, storage=firmware_storage, max_length=255)
    size = models.PositiveBigIntegerField(editable=False)
    sha256 = models.CharField(max_length=64, editable=False)
    signature = models.CharField(max_length=128, blank=True, editable=False, help_text="Ed25519, base64.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plant_id", "-created_at"]
        # "Same model + version" duplicates are refused by image_create under a plant lock: the
        # models are a list, which no portable unique index can cover.
        indexes = [models.Index(fields=["plant", "version"], name="firmware_plant_version")]

    def __str__(self) -> str:
        return f"{self.version} ({', '.join(self.hardware_models)})"

    def supports(self, model: str) -> bool:
        return model.lower() in {m.lower() for m in self.hardware_models}


class MaintenanceWindow(models.Model):
    """When a plant lets rollouts notify new devices (plant-local time; may cross midnight).

    Outside it, running rollouts wait: devices already updating finish, nobody new is told.
    """

    plant = models.OneToOneField("devices.Plant", on_delete=models.CASCADE, related_name="maintenance_window")
    start = models.TimeField(help_text="Plant-local time, e.g. 22:00.")
    end = models.TimeField(help_text="Plant-local time, e.g. 04:00 (the next day when earlier than start).")
    weekdays = models.JSONField(
        default=list, blank=True, help_text="Days the window opens (Monday is 0); empty: every day."
    )

    def __str__(self) -> str:
        return f"{self.plant}: {self.start:%H:%M}-{self.end:%H:%M}"

    def is_open(self, at) -> bool:
        local = at.astimezone(self.plant.tz)
        now, day = local.time(), local.weekday()
        if self.start <= self.end:
            return self.start <= now < self.end and (not self.weekdays or day in self.weekdays)
        # Crossing midnight: the part after midnight belongs to the day the window opened.
        if now >= self.start:
            return not self.weekdays or day in self.weekdays
        return now < self.end and (not self.weekdays or (day - 1) % 7 in self.weekdays)


class Rollout(models.Model):
    """A staged deployment of an image to a set of devices of one plant (hawkBit-like groups)."""

    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"
        FAILED = "failed", "Failed"

    plant = models.ForeignKey("devices.Plant", on_delete=models.PROTECT, related_name="rollouts")
    name = models.CharField(max_length=100)
    image = models.ForeignKey(
        FirmwareImage, on_delete=models.PROTECT, related_name="rollouts", null=True, blank=True,
        help_text="Empty for a rollback: each target then has its own (previous) image.",
    )  # fmt: skip
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    stages = models.JSONField(default=list, help_text="Stage sizes, e.g. [1, '5%', '25%', '100%'] (cumulative %).")
    current_stage = models.PositiveIntegerField(default=0, help_text="0 before start; 1..N while running.")
    success_threshold = models.PositiveSmallIntegerField(default=100, help_text="% of a stage that must succeed.")
    error_threshold = models.PositiveSmallIntegerField(default=20, help_text="% of a stage failing pauses the rollout.")
    auto_advance = models.BooleanField(default=True, help_text="Start the next stage without approval.")
    awaiting_approval = models.BooleanField(default=False, editable=False)
    waived_stage = models.PositiveIntegerField(
        default=0, editable=False,
        help_text="Stages up to this one were resumed by a person: their thresholds no longer apply.",
    )  # fmt: skip
    scheduled_at = models.DateTimeField(null=True, blank=True)
    pause_reason = models.CharField(max_length=255, blank=True, editable=False)
    rollback_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True, related_name="rollbacks")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, editable=False)
    finished_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state"], name="rollout_state")]

    def __str__(self) -> str:
        return self.name

    @property
    def stage_count(self) -> int:
        return len(self.stages)

    def is_active(self) -> bool:
        return self.state in (self.State.SCHEDULED, self.State.RUNNING, self.State.PAUSED)


class RolloutTarget(models.Model):
    """One device's update inside a rollout; its ``pk`` is the ``update_id`` devices see."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        NOTIFIED = "notified", "Notified"
        DOWNLOADING = "downloading", "Downloading"
        DOWNLOADED = "downloaded", "Downloaded"
        INSTALLING = "installing", "Installing"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        TIMED_OUT = "timed_out", "Timed out"
        CANCELLED = "cancelled", "Cancelled"

    ACTIVE = (Status.NOTIFIED, Status.DOWNLOADING, Status.DOWNLOADED, Status.INSTALLING)
    FAILURES = (Status.FAILED, Status.TIMED_OUT)
    TERMINAL = (Status.SUCCEEDED, Status.FAILED, Status.TIMED_OUT, Status.CANCELLED)

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="targets")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="firmware_updates")
    image = models.ForeignKey(FirmwareImage, on_delete=models.PROTECT, related_name="targets")
    stage = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    detail = models.CharField(max_length=255, blank=True)
    previous_version = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    progress_at = models.DateTimeField(null=True, blank=True, help_text="Last status change (for timeouts).")
    # When the firmware command for this notification reached the broker and the device stream;
    # null while it has not (yet): the beat re-pushes notified targets left so by a dead worker.
    pushed_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["rollout_id", "stage", "device_id"]
        constraints = [models.UniqueConstraint(fields=["rollout", "device"], name="rollouttarget_unique_device")]
        indexes = [
            models.Index(fields=["rollout", "stage", "status"], name="rollouttarget_stage_status"),
            models.Index(fields=["device", "status"], name="rollouttarget_device_status"),
            models.Index(fields=["status", "progress_at"], name="rollouttarget_timeouts"),
        ]

    def __str__(self) -> str:
        return f"{self.device_id} → {self.image_id} ({self.status})"


class RolloutTargetEvent(models.Model):
    """History of a device update: every status it went through, when, and why."""

    target = models.ForeignKey(RolloutTarget, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=RolloutTarget.Status.choices)
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["target_id", "at", "id"]

    def __str__(self) -> str:
        return f"{self.status} at {self.at:%Y-%m-%d %H:%M:%S}"


class RolloutEvent(models.Model):
    """Audit trail of a rollout: who started, paused, approved, cancelled or rolled back, or the system."""

    rollout = models.ForeignKey(Rollout, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField()
    action = models.CharField(max_length=32)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    detail = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["rollout_id", "at", "id"]

    def __str__(self) -> str:
        return f"{self.action} by {self.by or 'system'}"
