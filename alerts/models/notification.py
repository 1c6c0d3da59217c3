"""Notification channels (plug-ins by ``kind``), routing, mutes and delivery attempts (STYLE.md §6)."""

from django.conf import settings
from django.db import models


class NotificationChannel(models.Model):
    """Where notifications go. Kind-specific settings live in ``config``, validated by the kind's notifier."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        FAILING = "failing", "Failing (permanent error; fix the config to re-enable)"

    plant = models.ForeignKey("devices.Plant", on_delete=models.PROTECT, related_name="notification_channels")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16)
    config = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OK, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    failed_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plant_id", "name"]
        constraints = [models.UniqueConstraint(fields=["plant", "name"], name="channel_unique_name_per_plant")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class NotificationRoute(models.Model):
    """Which severities go to which channel, for whom, and when.

    ``delay_minutes`` 0 notifies at once (and repeats at the rule's re-alarm interval); a route
    with a delay is an escalation level: it fires only if the alarm is still unacknowledged then.
    ``roles`` and ``users`` name the people a person-addressed channel (e-mail) writes to.
    """

    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="notification_routes")
    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="routes")
    severities = models.JSONField(default=list, help_text='e.g. ["critical", "warning"]')
    roles = models.JSONField(default=list, blank=True, help_text='Plant roles to address, e.g. ["operator"].')
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    delay_minutes = models.PositiveIntegerField(default=0, help_text="0: at once; N: escalate after N minutes.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plant_id", "delay_minutes", "pk"]

    def __str__(self) -> str:
        when = "at once" if not self.delay_minutes else f"after {self.delay_minutes} min"
        return f"{'/'.join(self.severities)} → {self.channel.name} {when}"


class NotificationMute(models.Model):
    """A user's own mute of one device's notifications until a time."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_mutes")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="+")
    until = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-until"]
        constraints = [models.UniqueConstraint(fields=["user", "device"], name="mute_unique_user_device")]

    def __str__(self) -> str:
        return f"{self.user} mutes {self.device} until {self.until:%Y-%m-%d %H:%M}"


class Delivery(models.Model):
    """One message to one channel: a digest of the alarm events collected in its group window.

    ``key`` names the channel's time slot (``slot:<n>``): unique per channel, so at most one
    message per channel per window, and a retried dispatch finds the row it already made.
    ``(channel, key)`` is also the idempotency key sent with the message (``idempotency_key``).
    ``claimed_at`` is when the last attempt claimed the row: a row left ``sending`` long after it
    by a worker that died is returned to ``retrying`` by the sweeper (``deliveries_sweep``).
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        RETRYING = "retrying"
        SENT = "sent"
        FAILED = "failed"

    channel = models.ForeignKey(NotificationChannel, on_delete=models.CASCADE, related_name="deliveries")
    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=64)
    events = models.ManyToManyField("alerts.AlarmEvent", related_name="deliveries")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    scheduled_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["channel", "key"], name="delivery_unique_channel_slot")]
        indexes = [models.Index(fields=["status", "scheduled_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.channel} {self.key}: {self.status}"

    @property
    def idempotency_key(self) -> str:
        """Stable across every attempt of this message: receivers drop a second copy by it."""
        return f"channel-{self.channel_id}-{self.key.replace(':', '-')}"
