"""OEE: the plant's production calendar, effective-dated ideal cycle times, stop reasons and stored reports.

The calendar is kept in plant-local wall-clock times (``Plant.time_zone``); ``analytics.calendar``
turns it into UTC intervals, so a DST day has a 7- or 9-hour night shift, as it really has.
Validation that needs several rows (overlapping shifts, breaks outside their shift) lives in
``analytics.services.shift_save``, which every writer (API, admin) goes through.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class Shift(models.Model):
    """A recurring shift: ``start``–``end`` local time on ``weekdays`` (Monday = 0); may cross midnight.

    ``end == start`` means a 24-hour shift. An occurrence belongs to the day it starts on.
    """

    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="shifts")
    name = models.CharField(max_length=100)
    start = models.TimeField()
    end = models.TimeField()
    weekdays = models.JSONField(default=list, help_text="Days the shift starts on, Monday = 0 … Sunday = 6.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plant_id", "start", "name"]
        constraints = [models.UniqueConstraint(fields=["plant", "name"], name="shift_unique_name_per_plant")]

    def __str__(self) -> str:
        return f"{self.name} ({self.start:%H:%M}–{self.end:%H:%M})"


class ShiftBreak(models.Model):
    """A planned break inside a shift (local wall-clock times; after midnight for a night shift)."""

    shift = models.ForeignKey(Shift, on_delete=models.CASCADE, related_name="breaks")
    start = models.TimeField()
    end = models.TimeField()

    class Meta:
        ordering = ["shift_id", "id"]

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


class NonProductionDay(models.Model):
    """A date (plant-local) on which no shift starts: holidays, shutdown weeks."""

    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="non_production_days")
    date = models.DateField()
    reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["plant_id", "date"]
        constraints = [models.UniqueConstraint(fields=["plant", "date"], name="non_production_day_unique")]

    def __str__(self) -> str:
        return f"{self.date} {self.reason}".strip()


class IdealCycleTime(models.Model):
    """A machine's ideal cycle time from ``valid_from`` on: changing it never rewrites past results.

    Pieces counted before the first row use ``Device.ideal_cycle_time``.
    """

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="ideal_cycle_times")
    valid_from = models.DateTimeField()
    seconds = models.DecimalField(max_digits=10, decimal_places=3, validators=[MinValueValidator(Decimal("0.001"))])

    class Meta:
        ordering = ["device_id", "valid_from"]
        constraints = [models.UniqueConstraint(fields=["device", "valid_from"], name="ideal_cycle_time_unique")]

    def __str__(self) -> str:
        return f"{self.seconds} s from {self.valid_from:%Y-%m-%d %H:%M}"


class LossCategory(models.TextChoices):
    """The six big losses."""

    EQUIPMENT_FAILURE = "equipment_failure", "Equipment failure"
    SETUP_ADJUSTMENT = "setup_adjustment", "Setup and adjustment"
    IDLING_MINOR_STOPS = "idling_minor_stops", "Idling and minor stops"
    REDUCED_SPEED = "reduced_speed", "Reduced speed"
    PROCESS_DEFECTS = "process_defects", "Process defects"
    REDUCED_YIELD = "reduced_yield", "Reduced yield"


class ReasonCode(models.Model):
    """A plant's stop reason, mapped to one of the six big losses."""

    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="reason_codes")
    code = models.SlugField(max_length=32)
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=32, choices=LossCategory.choices)

    class Meta:
        ordering = ["plant_id", "code"]
        constraints = [models.UniqueConstraint(fields=["plant", "code"], name="reason_code_unique_per_plant")]

    def __str__(self) -> str:
        return f"{self.code}: {self.name}"


class StopReason(models.Model):
    """An operator's classification of the stop that began at ``start`` on ``device``."""

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="stop_reasons")
    start = models.DateTimeField()
    reason = models.ForeignKey(ReasonCode, on_delete=models.PROTECT, related_name="stops")
    note = models.CharField(max_length=255, blank=True)
    classified_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    classified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["device_id", "start"]
        constraints = [models.UniqueConstraint(fields=["device", "start"], name="stop_reason_unique")]

    def __str__(self) -> str:
        return f"{self.device_id} @ {self.start:%Y-%m-%d %H:%M:%S}: {self.reason_id}"


class OEEReport(models.Model):
    """One plant's OEE for one closed period (a shift occurrence, a day or a week), stored once.

    Unique per (kind, plant, period_start): re-running the report task finds the row and only
    recomputes when telemetry arrived after ``computed_at`` (then ``revision`` goes up).
    """

    class Kind(models.TextChoices):
        SHIFT = "shift"
        DAY = "day"
        WEEK = "week"

    class Status(models.TextChoices):
        PENDING = "pending"
        COMPUTING = "computing"
        DONE = "done"
        FAILED = "failed"

    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="oee_reports")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    label = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    revision = models.PositiveIntegerField(default=0, help_text="0 until computed; above 1 means revised.")
    data = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    emailed_revision = models.PositiveIntegerField(default=0)
    # Set while a send of ``emailed_revision`` is under way, cleared when it is done: still set long
    # after, its worker died mid-send and the e-mail goes out again (same Message-ID).
    email_claimed_at = models.DateTimeField(null=True, blank=True, editable=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-period_start", "kind"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "plant", "period_start"], name="oee_report_unique_period")
        ]

    def __str__(self) -> str:
        return f"{self.plant_id} {self.kind} {self.period_start:%Y-%m-%d %H:%M}"

    @property
    def revised(self) -> bool:
        return self.revision > 1


class ReportSubscription(models.Model):
    """A user receives a plant's OEE reports of these kinds by e-mail."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="oee_subscriptions")
    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="oee_subscriptions")
    kinds = models.JSONField(default=list, help_text='Report kinds to receive, e.g. ["shift", "day", "week"].')

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "plant"], name="oee_subscription_unique")]

    def __str__(self) -> str:
        return f"{self.user_id} → {self.plant_id} {self.kinds}"


class OEEDayCache(models.Model):
    """One machine's OEE inputs (``analytics.oee.Inputs`` as JSON) for one closed plant-local day.

    Day and week figures sum these rows instead of re-reading a month of telemetry. A row is
    ``stale`` after late telemetry (``analytics.signals``) or a change of the calendar, cycle
    times or stop reasons (``analytics.cache.day_cache_invalidate``) and is then recomputed on read.
    """

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    minor_stop_seconds = models.PositiveIntegerField()
    stale = models.BooleanField(default=False)
    inputs = models.JSONField()
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["device", "day"], name="oee_day_cache_unique")]

    def __str__(self) -> str:
        return f"{self.device_id} {self.day}"
