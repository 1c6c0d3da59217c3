"""The persisted state of each stream's online anomaly detector.

One row per (device, metric) stream: the detector's serialised state and how far it has scored,
so that whichever worker scores the stream next resumes it exactly (same scores as if one process
had scored every reading) and a restart loses nothing.
"""

from django.db import models


class DetectorState(models.Model):
    """A stream's detector state blob, the readings it has scored and the newest one's time."""

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="+")
    metric = models.ForeignKey("devices.Metric", on_delete=models.CASCADE, related_name="+")
    state = models.BinaryField()
    readings_seen = models.PositiveBigIntegerField(default=0)
    last_reading_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "anomaly_detector_state"
        constraints = [models.UniqueConstraint(fields=["device", "metric"], name="anomaly_state_one_per_stream")]

    def __str__(self) -> str:
        return f"{self.device_id}/{self.metric_id}: {self.readings_seen} readings"
