"""Plant roles and the guardian permissions each one grants on its plant.

Permissions are granted on ``Plant`` objects only; lines, devices, alarms and rollouts inherit
through their plant. Each plant has one guardian group per role (see ``accounts.services``).
"""

from django.db import models

PERM_VIEW = "devices.view_plant"
PERM_OPERATE = "devices.operate_plant"
PERM_MANAGE = "devices.manage_plant"


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    OPERATOR = "operator", "Operator"
    ADMIN = "admin", "Admin"


ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.VIEWER: ("view_plant",),
    Role.OPERATOR: ("view_plant", "operate_plant"),
    Role.ADMIN: ("view_plant", "operate_plant", "manage_plant", "change_plant"),
}
