"""Telemetry storage, designed for MySQL/InnoDB at 100M+ readings.

InnoDB stores rows in primary-key order, so every table here is keyed by what its reads scan:
(device, metric, time). A time-range query for one metric of one device is then one sequential
read of the clustered index, far cheaper than with a surrogate id and a secondary index (figures
in STACK.md). The foreign keys carry no database
constraint and no extra index: a secondary index per FK would double the write cost of the
hottest table; integrity is kept by the services that write and purge these rows.
"""

from django.core.validators import MaxValueValidator
from django.db import models


def _device_fk():
    return models.ForeignKey(
        "devices.Device", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )


def _metric_fk():
    return models.ForeignKey(
        "devices.Metric", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )


MAX_PRECISION = 6


class Metric(models.Model):
    """A metric name (``temperature``, ``count_total``), stored once and referenced by a small id,
    with how people read it: a display name, a unit and the decimal places its values show with
    (``devices/formats.py``; defaults for known names there)."""

    id = models.AutoField(primary_key=True)  # 4 bytes, not 8: it is repeated in every reading row
    name = models.CharField(max_length=63, unique=True)
    display_name = models.CharField(
        max_length=63, blank=True, help_text="Shown instead of the name, e.g. 'Spindle temperature'."
    )
    unit = models.CharField(max_length=16, blank=True, help_text="Shown after values, e.g. °C, mm/s, kW.")
    precision = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MaxValueValidator(MAX_PRECISION)],
        help_text=f"Decimal places (0–{MAX_PRECISION}); empty: integers as such, others with 2 (1 from 100).",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        """The display name, else the name in words (``count_total`` → "Count total")."""
        return self.display_name or self.name.replace("_", " ").capitalize()


class TelemetryReading(models.Model):
    """One reading: (device, metric, ts) → value. Duplicates (a device re-sending) are ignored."""

    pk = models.CompositePrimaryKey("device", "metric", "ts")
    device = _device_fk()
    metric = _metric_fk()
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        db_table = "telemetry_reading"

    def __str__(self) -> str:
        return f"{self.device_id}/{self.metric_id} @ {self.ts:%Y-%m-%d %H:%M:%S} = {self.value}"


class RollupBase(models.Model):
    device = _device_fk()
    metric = _metric_fk()
    bucket = models.DateTimeField(help_text="Start of the bucket (UTC).")
    min = models.FloatField()
    max = models.FloatField()
    sum = models.FloatField()
    count = models.PositiveIntegerField()
    last = models.FloatField(help_text="The value with the latest ts in the bucket.")
    last_ts = models.DateTimeField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.device_id}/{self.metric_id} @ {self.bucket:%Y-%m-%d %H:%M}"

    @property
    def avg(self) -> float:
        return self.sum / self.count


class TelemetryRollup1m(RollupBase):
    pk = models.CompositePrimaryKey("device", "metric", "bucket")

    class Meta:
        db_table = "telemetry_rollup_1m"


class TelemetryRollup1h(RollupBase):
    pk = models.CompositePrimaryKey("device", "metric", "bucket")

    class Meta:
        db_table = "telemetry_rollup_1h"


class RollupPending(models.Model):
    """A (device, minute) whose rollups must be recomputed from raw readings.

    Ingest upserts the mark and bumps ``generation``; the rollup task recomputes and then deletes
    the mark only if ``generation`` is unchanged, so readings committed meanwhile are never lost.
    """

    pk = models.CompositePrimaryKey("device", "bucket")
    device = _device_fk()
    bucket = models.DateTimeField()
    generation = models.PositiveBigIntegerField(default=1)

    class Meta:
        db_table = "telemetry_rollup_pending"

    def __str__(self) -> str:
        return f"{self.device_id} @ {self.bucket:%Y-%m-%d %H:%M} (generation {self.generation})"


class LatestValue(models.Model):
    """The newest reading per (device, metric): what "current value" tiles and APIs read."""

    pk = models.CompositePrimaryKey("device", "metric")
    device = _device_fk()
    metric = _metric_fk()
    ts = models.DateTimeField()
    value = models.FloatField()

    class Meta:
        db_table = "telemetry_latest"

    def __str__(self) -> str:
        return f"{self.device_id}/{self.metric_id} = {self.value} @ {self.ts:%Y-%m-%d %H:%M:%S}"


class MachineState(models.Model):
    """A machine's state from ``ts`` until the next row (CONTRACT.md: a state holds until the next)."""

    class State(models.TextChoices):
        RUNNING = "running"
        IDLE = "idle"
        DOWN = "down"
        SETUP = "setup"
        PLANNED_STOP = "planned_stop"
        OFFLINE = "offline"

    pk = models.CompositePrimaryKey("device", "ts")
    device = _device_fk()
    ts = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices)

    class Meta:
        db_table = "telemetry_machine_state"

    def __str__(self) -> str:
        return f"{self.device_id} {self.state} from {self.ts:%Y-%m-%d %H:%M:%S}"


class DeadLetter(models.Model):
    """A message that could not be ingested (invalid, unknown device), kept with its reason."""

    received_at = models.DateTimeField(db_index=True)
    transport = models.CharField(max_length=16)
    topic = models.CharField(max_length=255, blank=True)
    device_uid = models.CharField(max_length=64, blank=True, db_index=True)
    device = models.ForeignKey(
        "devices.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="dead_letters"
    )
    payload = models.TextField(help_text="The raw payload (first 64 KiB).")
    reason = models.TextField()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.device_uid or '?'} @ {self.received_at:%Y-%m-%d %H:%M:%S}"
