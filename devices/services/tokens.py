"""Device tokens: issue (shown once), authenticate, revoke, rotate.

A plain token is ``<prefix>.<secret>``. Only the prefix (to find the row) and
HMAC-SHA256(DEVICE_TOKEN_HASH_KEY, token) are stored; comparison is constant-time.
"""

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from devices.exceptions import DeviceAuthError
from devices.models import Device, DeviceToken

# last_used_at is bookkeeping, not audit: write it at most once a minute per token so a device
# sending every second does not turn each request into an UPDATE.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _hash(plain: str) -> str:
    return hmac.new(settings.DEVICE_TOKEN_HASH_KEY.encode(), plain.encode(), hashlib.sha256).hexdigest()


def token_issue(*, device: Device, name: str, by=None) -> tuple[DeviceToken, str]:
    """Create a token for ``device``; return the row and the plain token (the only time it exists)."""
    for _ in range(5):
        prefix = secrets.token_hex(6)
        plain = f"{prefix}.{secrets.token_urlsafe(32)}"
        token = DeviceToken(device=device, name=name, prefix=prefix, key_hash=_hash(plain), created_by=by)
        token.full_clean(exclude=["prefix", "key_hash"])
        try:
            with transaction.atomic():
                token.save()
            return token, plain
        except IntegrityError:  # prefix collision: astronomically rare, try another
            continue
    raise RuntimeError("Could not generate a unique token prefix.")


def token_authenticate(plain: str) -> Device:
    """Return the device a plain token belongs to, or raise ``DeviceAuthError``.

    401 for a malformed or unknown token; 403 for a revoked or expired token or a disabled
    device. Updates ``last_used_at`` (at most once a minute).
    """
    prefix, dot, _ = plain.partition(".")
    if not dot or not prefix:
        raise DeviceAuthError("Malformed device token: expected '<prefix>.<secret>'.", status=401)
    token = DeviceToken.objects.select_related("device").filter(prefix=prefix).first()
    if token is None or not hmac.compare_digest(token.key_hash, _hash(plain)):
        raise DeviceAuthError("Unknown device token. Check the token or issue a new one.", status=401)
    now = timezone.now()
    if token.revoked_at is not None:
        raise DeviceAuthError(f"Device token '{token.name}' has been revoked; issue a new one.", status=403)
    if not token.is_active(now):
        raise DeviceAuthError(
            f"Device token '{token.name}' expired at {token.expires_at.isoformat()} after rotation; "
            "use the token that replaced it.",
            status=403,
        )
    if not token.device.enabled:
        raise DeviceAuthError(f"Device '{token.device.uid}' is disabled; a plant admin can enable it.", status=403)
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        DeviceToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.device


def token_revoke(*, token: DeviceToken) -> bool:
    """Revoke ``token`` now. Idempotent: returns False if it was already revoked."""
    return token.revoke(timezone.now())


@transaction.atomic
def token_rotate(*, token: DeviceToken, by=None, grace_seconds: int = 0) -> tuple[DeviceToken, str]:
    """Issue a replacement with the same name; the old token stops working after ``grace_seconds``.

    A grace period lets a device fleet pick up the new token before the old one dies. Rotating a
    token already in its grace period only ever shortens that period. Raises ``ValidationError``
    for a revoked or expired token: rotation must never bring a dead credential back to life.
    """
    now = timezone.now()
    current = DeviceToken.objects.select_for_update().get(pk=token.pk)
    if current.revoked_at is not None:
        raise ValidationError(f"Token '{current.name}' is revoked; issue a new token for the device instead.")
    if not current.is_active(now):
        raise ValidationError(
            f"Token '{current.name}' expired at {current.expires_at.isoformat()}; "
            "issue a new token for the device instead."
        )
    new_token, plain = token_issue(device=token.device, name=token.name, by=by)
    if grace_seconds > 0:
        expires_at = now + timedelta(seconds=grace_seconds)
        if current.expires_at is not None:
            expires_at = min(expires_at, current.expires_at)
        DeviceToken.objects.filter(pk=token.pk).update(expires_at=expires_at)
    else:
        current.revoke(now)
    token.refresh_from_db()
    return new_token, plain
