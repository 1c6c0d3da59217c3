"""Alarms and their history, per ISA-18.2 / IEC 62682 (STYLE.md §2, §4, §5)."""

from datetime import datetime

from django.conf import settings
from django.db import models

from alerts.models.rule import Severity


class Alarm(models.Model):
    """One occurrence of a rule's condition on one device, from raise to close.

    At most one open alarm per (rule, device): ``active_key`` is set while the alarm is open and
    cleared when it closes, and is unique (a NULL never clashes), which works on MySQL where
    conditional unique constraints do not. Shelving and suppression are overlays on the state:
    they silence notifications, the state machine keeps running underneath.
    """

    class State(models.TextChoices):
        ACTIVE_UNACK = "active_unack", "Active, unacknowledged"
        ACTIVE_ACK = "active_ack", "Active, acknowledged"
        CLEARED_UNACK = "cleared_unack", "Cleared, unacknowledged"
        CLOSED = "closed", "Closed"

    OPEN_STATES = (State.ACTIVE_UNACK, State.ACTIVE_ACK, State.CLEARED_UNACK)
    ACTIVE_STATES = (State.ACTIVE_UNACK, State.ACTIVE_ACK)

    plant = models.ForeignKey("devices.Plant", on_delete=models.PROTECT, related_name="alarms")
    rule = models.ForeignKey("alerts.AlertRule", on_delete=models.PROTECT, related_name="alarms")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="alarms")
    severity = models.CharField(max_length=8, choices=Severity.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE_UNACK)
    message = models.CharField(max_length=255)
    value = models.FloatField(null=True, blank=True, help_text="The value that raised (or last changed) the alarm.")
    raised_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cleared_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)
    shelved_until = models.DateTimeField(null=True, blank=True)
    shelved_reason = models.CharField(max_length=255, blank=True)
    shelved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    suppressed = models.BooleanField(default=False, help_text="Out of service (set by a plant admin).")
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notify_count = models.PositiveIntegerField(default=0)
    active_key = models.CharField(max_length=40, null=True, blank=True, unique=True, editable=False)

    class Meta:
        ordering = ["-raised_at", "-pk"]
        indexes = [
            models.Index(fields=["plant", "state"], name="alarm_plant_state"),
            models.Index(fields=["plant", "raised_at"], name="alarm_plant_raised"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} on {self.device} ({self.get_state_display()})"

    @staticmethod
    def key_for(rule_id: int, device_id: int) -> str:
        return f"{rule_id}:{device_id}"

    @property
    def is_open(self) -> bool:
        return self.state in self.OPEN_STATES

    def is_shelved(self, now: datetime) -> bool:
        return self.shelved_until is not None and self.shelved_until > now

    def flip(self, expected: tuple, **fields) -> bool:
        """Move this row to ``fields`` only if its state is still one of ``expected`` (a claim).

        Returns False when another worker or request got there first; the instance is then
        reloaded so the caller sees what actually happened.
        """
        claimed = Alarm.objects.filter(pk=self.pk, state__in=expected).update(**fields)
        if claimed:
            for name, value in fields.items():
                setattr(self, name, value)
        else:
            self.refresh_from_db()
        return bool(claimed)


class AlarmEvent(models.Model):
    """One transition of an alarm (its history) and the notifier's outbox (``processed_at`` NULL)."""

    class Kind(models.TextChoices):
        RAISED = "raised"
        RETURNED = "returned", "Returned (active again before acknowledgement)"
        CLEARED = "cleared", "Returned to normal"
        ACKNOWLEDGED = "acknowledged"
        CLOSED = "closed"
        SHELVED = "shelved"
        UNSHELVED = "unshelved"
        SUPPRESSED = "suppressed"
        UNSUPPRESSED = "unsuppressed"
        ESCALATED = "escalated"
        REPEATED = "repeated"

    NOTIFY = (Kind.RAISED, Kind.RETURNED, Kind.ESCALATED, Kind.REPEATED)
    # Transitions counted for chattering (EEMUA 191): the alarm going in and out.
    ANNUNCIATIONS = (Kind.RAISED, Kind.RETURNED)

    alarm = models.ForeignKey(Alarm, on_delete=models.CASCADE, related_name="events")
    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    at = models.DateTimeField()
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    comment = models.TextField(blank=True)
    value = models.FloatField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=Alarm.State.choices, help_text="The alarm's state after this.")
    route = models.ForeignKey(
        "alerts.NotificationRoute", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        constraints = [
            # One escalation per (alarm, route); NULL routes (every other kind) never clash.
            models.UniqueConstraint(fields=["alarm", "kind", "route"], name="alarmevent_unique_escalation")
        ]
        indexes = [
            models.Index(fields=["processed_at"], name="alarmevent_outbox"),
            models.Index(fields=["plant", "kind", "at"], name="alarmevent_plant_kind_at"),
        ]

    def __str__(self) -> str:
        return f"{self.alarm_id} {self.kind} @ {self.at:%Y-%m-%d %H:%M:%S}"
