"""Writes for accounts and plant roles."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import ApiKey, PlantRole, ServiceAccount, User
from accounts.roles import ROLE_PERMISSIONS, Role
from audit.models import AuditEntry
from audit.services import audit_record, auditlog_paused
from devices.models import Plant
from devices.services.tokens import LAST_USED_RESOLUTION, credential_create, credential_matches


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
        .exclude(service_account__isnull=False)  # a plant needs a person as its admin
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
    with auditlog_paused():  # one role entry below, not a group-membership entry per group
        for name, plant_role in roles.items():
            if name == role:
                plant_role.group.user_set.add(user)
            else:
                plant_role.group.user_set.remove(user)
    before = ",".join(sorted(current)) or None
    if before != role:
        audit_record(
            event="role_set", obj=user, plant=plant, action=AuditEntry.Action.UPDATE, changes={"role": (before, role)}
        )
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
    with auditlog_paused():
        for plant_role in PlantRole.objects.filter(plant=plant).select_related("group"):
            plant_role.group.user_set.remove(user)
    if current:
        audit_record(
            event="member_removed", obj=user, plant=plant, action=AuditEntry.Action.UPDATE,
            changes={"role": (",".join(sorted(current)), None)},
        )  # fmt: skip


@transaction.atomic
def service_account_create(*, name: str, plant: Plant, role: str, description: str = "", by=None) -> ServiceAccount:
    """Create a service account (a ``User`` named ``name`` without a usable password) holding ``role`` on ``plant``.

    More plants: give it roles like any member (``member_set_role``). Raises ``ValidationError``
    for a taken or invalid name or an unknown role.
    """
    user = User(username=name)
    user.set_unusable_password()
    if User.objects.filter(username=name).exists():
        raise ValidationError({"name": f"A user or service account named '{name}' exists; choose another name."})
    try:
        user.full_clean()
    except ValidationError as exc:  # the API calls it name: the username is the account's name
        raise ValidationError({"name": exc.message_dict.get("username", exc.messages)}) from None
    user.save()
    account = ServiceAccount(user=user, description=description, created_by=by)
    account.full_clean(exclude=["user"])
    account.save()
    member_set_role(plant=plant, user=user, role=role)
    return account


def api_key_issue(*, account: ServiceAccount, name: str, expires_at=None, by=None) -> tuple[ApiKey, str]:
    """Create a key for ``account``; return the row and the plain key (the only time it exists).

    ``expires_at`` defaults to ``API_KEY_DEFAULT_DAYS`` from now and must lie in the future.
    """
    now = timezone.now()
    if expires_at is None:
        expires_at = now + timedelta(days=settings.API_KEY_DEFAULT_DAYS)
    elif expires_at <= now:
        raise ValidationError({"expires_at": "Choose a time in the future."})
    # The device tokens' scheme: <prefix>.<secret>, stored as the prefix and an HMAC.
    return credential_create(
        lambda prefix, key_hash: ApiKey(
            account=account, name=name, prefix=prefix, key_hash=key_hash, expires_at=expires_at, created_by=by
        )
    )


def api_key_revoke(*, key: ApiKey) -> bool:
    """Revoke ``key`` now (its next request is refused); False when it was revoked already."""
    updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    key.refresh_from_db()
    if updated:
        audit_record(
            event="api_key_revoked",
            obj=key,
            action=AuditEntry.Action.UPDATE,
            changes={"revoked_at": (None, key.revoked_at)},
        )
    return updated == 1


def api_key_check(*, plain: str) -> ApiKey:
    """The usable key ``plain`` names (with its account and user loaded), or ``ValidationError`` saying why not.

    Records the use in ``last_used_at`` at most once a minute, as for device tokens
    (``LAST_USED_RESOLUTION``): the conditional UPDATE lets one of many concurrent requests write it.
    """
    prefix, dot, _ = plain.partition(".")
    key = None
    if dot and prefix:
        key = ApiKey.objects.select_related("account__user").filter(prefix=prefix).first()
    if key is None or not credential_matches(plain, key.key_hash):
        raise ValidationError("Unknown API key. Check it, or ask a plant admin for a new one.")
    now = timezone.now()
    refusal = key.refusal(now)
    if refusal:
        raise ValidationError(refusal)
    stale = now - LAST_USED_RESOLUTION
    if key.last_used_at is None or key.last_used_at <= stale:
        ApiKey.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=key.pk).update(
            last_used_at=now
        )
        key.last_used_at = now
    return key
