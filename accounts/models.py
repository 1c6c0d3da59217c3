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
