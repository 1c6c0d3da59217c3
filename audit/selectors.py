"""Who reads the audit log: superusers every entry, plant admins the entries of their plants."""

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet

from accounts.models import User
from accounts.roles import PERM_MANAGE
from accounts.selectors import plant_list_for
from audit.models import AuditEntry


def audit_reader(user: User | AnonymousUser) -> bool:
    """Whether ``user`` may read the audit log at all: a superuser or an admin of some plant."""
    if not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or plant_list_for(user, PERM_MANAGE).exists()


def audit_entry_list_for(user: User | AnonymousUser) -> QuerySet[AuditEntry]:
    """Entries ``user`` may read (newest first): all for a superuser, those of the plants they
    administer otherwise. Entries without a plant (accounts, logins, global settings) are the
    superusers' alone."""
    entries = AuditEntry.objects.select_related("actor", "content_type", "plant").order_by("-timestamp", "-pk")
    if user.is_authenticated and user.is_active and user.is_superuser:
        return entries
    return entries.filter(plant__in=plant_list_for(user, PERM_MANAGE).values("pk"))
