"""The demo users for ``manage.py seed_demo``: an admin and one user per plant role, with passwords
kept in ``VAR_DIR/demo-credentials.json`` (so a second run prints the same ones)."""

import json
import os
import secrets

from django.conf import settings

from accounts.models import User
from accounts.roles import Role
from accounts.services import member_set_role

# username, role on the demo plant (None: superuser)
USERS = [("admin", None), ("manager", Role.ADMIN), ("operator", Role.OPERATOR), ("viewer", Role.VIEWER)]


def demo_seed(*, plant) -> int:
    """Create the demo users with their roles on ``plant`` (idempotent); return how many were created."""
    created = 0
    credentials = _credentials_read()
    for username, role in USERS:
        user = User.objects.filter(username=username).first()
        if user is None or username not in credentials:
            credentials[username] = secrets.token_urlsafe(12)
            user = user or User(username=username, email=f"{username}@demo.invalid", is_superuser=role is None)
            created += user.pk is None
            user.is_staff = role is None
            user.set_password(credentials[username])
            user.save()
        if role:
            member_set_role(plant=plant, user=user, role=role)
    _credentials_save(credentials)
    return created


def demo_logins() -> list[tuple[str, str, str]]:
    """``(username, password, role)`` of each demo user, for the command to print."""
    credentials = _credentials_read()
    return [(username, credentials.get(username, "?"), role or "superuser") for username, role in USERS]


def _path():
    return settings.VAR_DIR / "demo-credentials.json"


def _credentials_read() -> dict:
    try:
        return json.loads(_path().read_text())
    except (OSError, ValueError):
        return {}


def _credentials_save(credentials: dict) -> None:
    _path().parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(credentials, fh, indent=2)
