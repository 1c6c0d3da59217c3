"""Helpers for the audit tests: JWT clients (the API user is only known after DRF authenticates) and entries."""

from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from audit.models import AuditEntry


def jwt_client(user, **headers) -> APIClient:
    """An API client sending ``Authorization: Bearer`` (no session: the middleware cannot see the user)."""
    client = APIClient(**headers)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


def entries(**filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(**filters).select_related("actor", "content_type").order_by("pk"))


def every_entry_as_text() -> str:
    """Every stored column of every entry, as one string (to search for a secret)."""
    return "\n".join(repr(row) for row in AuditEntry.objects.values())
