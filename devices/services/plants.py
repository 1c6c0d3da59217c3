"""Writes for plants and lines."""

from django.db import transaction

from accounts.roles import Role
from accounts.services import member_set_role, plant_roles_setup
from devices.models import Line, Plant


@transaction.atomic
def plant_create(*, name: str, time_zone: str = "UTC", created_by=None, **fields) -> Plant:
    """Create a plant with its role groups; a creator who is not a superuser becomes its admin."""
    plant = Plant(name=name, time_zone=time_zone, **fields)
    plant.full_clean()
    plant.save()
    plant_roles_setup(plant=plant)
    if created_by is not None and not created_by.is_superuser:
        member_set_role(plant=plant, user=created_by, role=Role.ADMIN)
    return plant


def line_create(*, plant: Plant, name: str, **fields) -> Line:
    """Create a line in ``plant``. Raises ``ValidationError`` on a duplicate name."""
    line = Line(plant=plant, name=name, **fields)
    line.full_clean()
    line.save()
    return line
