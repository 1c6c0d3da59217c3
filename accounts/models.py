from django.contrib.auth.models import AbstractUser, Group
from django.db import models

from accounts.roles import Role


class User(AbstractUser):
    """A person: plant manager, operator or integrator. Roles come from ``PlantRole`` groups."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"


class PlantRole(models.Model):
    """The guardian group that carries one role on one plant (``plant-<pk>-<role>``).

    Group membership is the single source of truth for who holds which role; this row only
    names which group means what, so no group name is ever parsed.
    """

    plant = models.ForeignKey("devices.Plant", on_delete=models.CASCADE, related_name="roles")
    role = models.CharField(max_length=16, choices=Role.choices)
    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="plant_role")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["plant", "role"], name="plantrole_unique_plant_role")]

    def __str__(self) -> str:
        return f"{self.plant} / {self.get_role_display()}"


class ServiceAccount(models.Model):
    """An integration (ERP, MES, a script) that calls the API with keys instead of a password.

    Its ``user`` has no usable password and is never staff: it holds plant roles exactly like a
    member (the same guardian groups), so every permission check applies to it unchanged, and it
    reaches the API only through ``ApiKeyAuthentication`` (never pages or the admin).
    """

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="service_account")
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.user.username


class ApiKey(models.Model):
    """A service account's key, sent as ``Authorization: Api-Key <prefix>.<secret>``.

    The plain key is shown once; ``prefix`` finds the row and ``hashed_key`` is its HMAC-SHA256 under
    ``DEVICE_TOKEN_HASH_KEY``, the device tokens' scheme (``devices.services.tokens``). ``last_used_at``
    is written at most once a minute (as a token's), so a busy integration does not write per request.
    """

    account = models.ForeignKey(ServiceAccount, on_delete=models.CASCADE, related_name="keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=150, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )
    expires_at = models.DateTimeField(help_text="After this time the key is refused.")
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def refusal(self, now) -> str | None:
        """Why the key cannot be used now, or None."""
        if self.revoked_at is not None:
            return f"API key '{self.name}' has been revoked; ask a plant admin for a new one."
        if now >= self.expires_at:
            return f"API key '{self.name}' expired at {self.expires_at.isoformat()}; ask a plant admin for a new one."
        if not self.account.user.is_active:
            return f"Service account '{self.account}' is disabled; ask a plant admin."
        return None
