from datetime import datetime

from django.conf import settings
from django.db import models


class ProvisioningKey(models.Model):
    """A plant's key that lets devices without a token register themselves (CONTRACT.md, Provisioning).

    Like a device token, the plain key (``<prefix>.<secret>``) is shown once; ``prefix`` finds the
    row and ``key_hash`` is its HMAC. Devices it creates go to ``plant`` (and ``line``); with
    ``model`` set, only devices of that hardware model may use it. ``needs_approval`` holds each
    device in the pending list until a plant admin approves it.
    """

    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="provisioning_keys")
    line = models.ForeignKey("devices.Line", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    model = models.CharField("hardware model", max_length=100, blank=True, help_text="Only devices of this model.")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    key_hash = models.CharField(max_length=64, editable=False)
    needs_approval = models.BooleanField(default=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Devices it may register; empty: no limit.")
    uses = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["plant_id", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def refusal(self, now: datetime) -> str | None:
        """Why the key cannot register a device now, or None."""
        if self.revoked_at is not None:
            return f"Provisioning key '{self.name}' has been revoked; ask a plant admin for a new one."
        if self.expires_at is not None and now >= self.expires_at:
            return f"Provisioning key '{self.name}' expired at {self.expires_at.isoformat()}; ask for a new one."
        if self.max_uses is not None and self.uses >= self.max_uses:
            return f"Provisioning key '{self.name}' has registered its {self.max_uses} device(s); ask for a new one."
        return None


class ProvisioningRequest(models.Model):
    """One use of a provisioning key: what the device asked for, from where, and what came of it.

    ``pending`` rows are the approval list; an approved row gets its device, and the device's next
    call receives its token (``delivered``).
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for approval"
        APPROVED = "approved", "Approved, token not yet collected"
        DELIVERED = "delivered", "Registered"
        REJECTED = "rejected", "Rejected"
        CONFLICT = "conflict", "Refused: the uid exists"
        INVALID = "invalid", "Refused: bad fields"

    key = models.ForeignKey(ProvisioningKey, on_delete=models.CASCADE, related_name="requests")
    uid = models.CharField(max_length=64)
    name = models.CharField(max_length=100, blank=True)
    kind = models.CharField(max_length=16, blank=True)
    model = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    detail = models.CharField(max_length=500, blank=True)
    address = models.GenericIPAddressField(null=True, blank=True)
    device = models.ForeignKey("devices.Device", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["key", "uid", "status"])]

    def __str__(self) -> str:
        return f"{self.uid} via {self.key.name}: {self.status}"
