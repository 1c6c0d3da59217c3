"""Reads scoped to a user: the single place that decides which plants (and so which rows) a user sees.

Every queryset, consumer, export, admin page and Celery-built report goes through
``plant_list_for`` or ``scope_to_plants``. Superusers see every plant.
"""

from django.contrib.auth.models import AnonymousUser, Group
from django.db.models import F, Prefetch, QuerySet
from guardian.shortcuts import get_objects_for_user

from accounts.models import ApiKey, PlantRole, ServiceAccount, User
from accounts.roles import PERM_MANAGE, PERM_VIEW, Role
from devices.models import Plant


def plant_list_for(user: User | AnonymousUser, perm: str = PERM_VIEW) -> QuerySet[Plant]:
    """Plants on which ``user`` holds ``perm`` through a role (or all plants for a superuser).

    Global model permissions are deliberately ignored: roles exist per plant only, so a row is
    visible exactly when the object check (``user_has_plant_perm``) would also pass.
    """
    if not user.is_authenticated or not user.is_active:
        return Plant.objects.none()
    if user.is_superuser:
        return Plant.objects.all()
    return get_objects_for_user(user, perm, klass=Plant, accept_global_perms=False)


def scope_to_plants(queryset: QuerySet, user: User | AnonymousUser, perm: str = PERM_VIEW, plant_field: str = "plant"):
    """Filter ``queryset`` to rows whose plant (reached through ``plant_field``; "" for plants) the user may ``perm``.

    The plant list is a subquery, so the scoping costs no extra round trip.
    """
    if user.is_authenticated and user.is_active and user.is_superuser:
        return queryset
    plants = plant_list_for(user, perm).values("pk")
    lookup = f"{plant_field}__in" if plant_field else "pk__in"
    return queryset.filter(**{lookup: plants})


def user_has_plant_perm(user: User | AnonymousUser, perm: str, plant: Plant) -> bool:
    """Whether ``user`` holds ``perm`` (e.g. ``PERM_MANAGE``) on this plant."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.has_perm(perm, plant)


def plant_roles_of(user: User | AnonymousUser) -> dict[int, str]:
    """Map plant id → the user's highest role there, in one query (used to show "my role")."""
    if not user.is_authenticated:
        return {}
    order = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}
    roles: dict[int, str] = {}
    for plant_id, role in PlantRole.objects.filter(group__user=user).values_list("plant_id", "role"):
        if plant_id not in roles or order[role] > order[roles[plant_id]]:
            roles[plant_id] = role
    return roles


def member_list(plant: Plant) -> QuerySet[User]:
    """Users holding a role on ``plant``, each annotated with ``role``, ordered by username (one query)."""
    return (
        User.objects.filter(groups__plant_role__plant=plant)
        .annotate(role=F("groups__plant_role__role"))
        .order_by("username")
    )


def service_account_list_for(user: User | AnonymousUser) -> QuerySet[ServiceAccount]:
    """Service accounts holding a role on a plant ``user`` administers (all of them for a superuser)."""
    role_groups = Group.objects.filter(plant_role__isnull=False).select_related("plant_role")
    accounts = ServiceAccount.objects.select_related("user").prefetch_related(
        Prefetch("user__groups", queryset=role_groups, to_attr="role_groups")
    )
    if user.is_authenticated and user.is_active and user.is_superuser:
        return accounts
    plants = plant_list_for(user, PERM_MANAGE).values("pk")
    holding = ServiceAccount.objects.filter(user__groups__plant_role__plant__in=plants).values("pk")
    return accounts.filter(pk__in=holding)


def api_key_list_for(user: User | AnonymousUser) -> QuerySet[ApiKey]:
    """Keys of the service accounts ``service_account_list_for`` shows (never their plain text: it is not stored)."""
    accounts = service_account_list_for(user).values("pk")
    return ApiKey.objects.select_related("account__user").filter(account__in=accounts)


def service_account_plants(account: ServiceAccount) -> dict[int, str]:
    """Plant id → the account's role there (no query when it came from ``service_account_list_for``).

    ``member_set_role`` gives a member one role per plant, so there is nothing to rank.
    """
    groups = getattr(account.user, "role_groups", None)
    if groups is None:
        return plant_roles_of(account.user)
    return {group.plant_role.plant_id: group.plant_role.role for group in groups}


def service_account_manageable_by(user: User | AnonymousUser, account: ServiceAccount) -> bool:
    """Whether ``user`` may issue keys for ``account``: a key reaches every plant the account has a role
    on, so this needs the admin role on all of them (or a superuser)."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.is_superuser:
        return True
    plants = set(service_account_plants(account))
    managed = set(plant_list_for(user, PERM_MANAGE).filter(pk__in=plants).values_list("pk", flat=True))
    return bool(plants) and plants <= managed
