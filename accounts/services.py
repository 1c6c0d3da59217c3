"""Writes for accounts and plant roles."""

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from guardian.shortcuts import assign_perm

from accounts.models import PlantRole, User
from accounts.roles import ROLE_PERMISSIONS, Role
from devices.models import Plant


def user_create(*, username: str, password: str, email: str = "", **fields) -> User:
    """Create a user with a validated, Argon2-hashed password. Raises ``ValidationError``."""
    user = User(username=username, email=email, **fields)
    validate_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    return user


def user_set_password(*, user: User, password: str) -> User:
    """Check ``password`` against the password validators, then store its hash. Raises ``ValidationError``."""
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    return user


@transaction.atomic
def plant_roles_setup(*, plant: Plant) -> dict[str, PlantRole]:
    """Create the plant's role groups (``plant-<pk>-<role>``) and grant their permissions.

    Idempotent: running it again on an existing plant changes nothing.
    """
    roles = {}
    for role in Role:
        group, _ = Group.objects.get_or_create(name=f"plant-{plant.pk}-{role.value}")
        plant_role, _ = PlantRole.objects.get_or_create(plant=plant, role=role.value, defaults={"group": group})
        for codename in ROLE_PERMISSIONS[role]:
            assign_perm(f"devices.{codename}", group, plant)
        roles[role.value] = plant_role
    return roles


def _lock(plant: Plant) -> None:
    """Serialise role changes of one plant: two admins demoting each other at once must not
    both pass the last-admin check."""
    Plant.objects.select_for_update().filter(pk=plant.pk).first()


def _admin_count(plant: Plant, excluding: User) -> int:
    return (
        User.objects.filter(groups__plant_role__plant=plant, groups__plant_role__role=Role.ADMIN)
        .exclude(pk=excluding.pk)
        .count()
    )


@transaction.atomic
def member_set_role(*, plant: Plant, user: User, role: str) -> bool:
    """Give ``user`` exactly one role on ``plant``, replacing any other. Returns True if newly a member.

    Raises ``ValidationError`` when the change would leave the plant without an admin.
    """
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}; use one of {', '.join(Role.values)}."})
    _lock(plant)
    roles = plant_roles_setup(plant=plant)
    current = set(PlantRole.objects.filter(plant=plant, group__user=user).values_list("role", flat=True))
    if Role.ADMIN in current and role != Role.ADMIN and _admin_count(plant, user) == 0:
        raise ValidationError(
            {"role": f"{user.username} is the last admin of {plant.name}; appoint another admin first."}
        )
    for name, plant_role in roles.items():
        if name == role:
            plant_role.group.user_set.add(user)
        else:
            plant_role.group.user_set.remove(user)
    return not current


@transaction.atomic
def member_remove(*, plant: Plant, user: User) -> None:
    """Remove every role ``user`` holds on ``plant``. Refuses to remove the last admin."""
    _lock(plant)
    current = set(PlantRole.objects.filter(plant=plant, group__user=user).values_list("role", flat=True))
    if Role.ADMIN in current and _admin_count(plant, user) == 0:
        raise ValidationError(
            {"user": f"{user.username} is the last admin of {plant.name}; appoint another admin first."}
        )
    for plant_role in PlantRole.objects.filter(plant=plant).select_related("group"):
        plant_role.group.user_set.remove(user)
