from datetime import datetime

from django.conf import settings
from django.db import models


class DeviceToken(models.Model):
    """A device credential. The plain token (``<prefix>.<secret>``) is shown once, never stored.

    ``prefix`` finds the row; ``key_hash`` is HMAC-SHA256 of the whole token (see
    ``devices.services.tokens``). A token stops working when revoked or past ``expires_at``
    (set when it is rotated with a grace period).
    """

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    # When the MQTT broker was given this token as the device's password (the device's latest such
    # token is the one it holds); null for tokens the broker never saw (devices.services.broker).
    mqtt_password_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["device_id", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_active(self, now: datetime) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or now < self.expires_at

    def revoke(self, now: datetime) -> bool:
        """Revoke this token; return False when it was already revoked (idempotent)."""
        updated = DeviceToken.objects.filter(pk=self.pk, revoked_at__isnull=True).update(revoked_at=now)
        self.revoked_at = self.revoked_at or now
        return updated == 1
