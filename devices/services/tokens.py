"""Device tokens: issue (shown once), authenticate, revoke, rotate.

A plain token is ``<prefix>.<secret>``. Only the prefix (to find the row) and
HMAC-SHA256(DEVICE_TOKEN_HASH_KEY, token) are stored; comparison is constant-time.
``credential_create``, ``credential_hash`` and ``credential_matches`` are that scheme for any
such credential row (plant provisioning keys use them too).
"""

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audit.models import AuditEntry
from audit.services import audit_record
from devices.exceptions import DeviceAuthError
from devices.models import Device, DeviceToken
from devices.services import broker

# last_used_at is bookkeeping, not audit: write it at most once a minute per token so a device
# sending every second does not turn each request into an UPDATE.
LAST_USED_RESOLUTION = timedelta(seconds=60)
NO_CREDENTIAL = "Send the device token as 'Authorization: Device <token>'."


def credential_hash(plain: str) -> str:
    """HMAC-SHA256 (``DEVICE_TOKEN_HASH_KEY``) of a plain ``<prefix>.<secret>`` credential, as stored."""
    return hmac.new(settings.DEVICE_TOKEN_HASH_KEY.encode(), plain.encode(), hashlib.sha256).hexdigest()


def credential_matches(plain: str, key_hash: str) -> bool:
    """True when ``plain`` is the credential ``key_hash`` was made of (constant-time)."""
    return hmac.compare_digest(key_hash, credential_hash(plain))


def credential_create(build: Callable[[str, str], models.Model]) -> tuple[models.Model, str]:
    """Save a new credential row; return it and its plain ``<prefix>.<secret>`` (the only time it exists).

    ``build(prefix, key_hash)`` returns the unsaved row (fields ``prefix``, unique, and ``key_hash``).
    The row is validated (``ValidationError``) and saved; a prefix collision is retried with a new secret.
    """
    for _ in range(5):
        prefix = secrets.token_hex(6)
        plain = f"{prefix}.{secrets.token_urlsafe(32)}"
        row = build(prefix, credential_hash(plain))
        row.full_clean(exclude=["prefix", "key_hash"])
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:  # prefix collision: astronomically rare, try another
            continue
        return row, plain
    raise RuntimeError("Could not generate a unique prefix.")


@transaction.atomic
def token_issue(*, device: Device, name: str, by=None) -> tuple[DeviceToken, str]:
    """Create a token for ``device``; return the row and the plain token (the only time it exists).

    When the platform provisions the MQTT broker, the token becomes the device's MQTT password
    there before the row commits; ``broker.BrokerError`` (broker down) rolls the token back.
    """
    token, plain = credential_create(
        lambda prefix, key_hash: DeviceToken(device=device, name=name, prefix=prefix, key_hash=key_hash, created_by=by)
    )
    if broker.broker_managed():
        token.mqtt_password_at = timezone.now()
        DeviceToken.objects.filter(pk=token.pk).update(mqtt_password_at=token.mqtt_password_at)
        broker.broker_device_set_password(uid=device.uid, password=plain, enabled=device.enabled)
    return token, plain


def broker_password_holders(device_ids: list[int] | None = None) -> dict[int, DeviceToken]:
    """Per device, the token the MQTT broker holds as its password: the last one given to it
    (``mqtt_password_at``). For ``device_ids``, or every device when None; one query."""
    tokens = DeviceToken.objects.filter(mqtt_password_at__isnull=False).order_by("mqtt_password_at", "pk")
    if device_ids is not None:
        tokens = tokens.filter(device_id__in=device_ids)
    return {token.device_id: token for token in tokens}  # the latest one wins


# The hot path of every device request: one hand-written query instead of an ORM select_related,
# whose query compilation cost several times the query itself (docs/benchmarks.md).
_WANTED = {"id", "uid", "name", "kind", "firmware_version", "enabled", "plant_id", "last_seen_at", "online", "state",
           "state_since", "expected_interval"}  # fmt: skip
# Model.from_db expects values in the model's field order.
_DEVICE_FIELDS = tuple(f.attname for f in Device._meta.concrete_fields if f.attname in _WANTED)
_TOKEN_FIELDS = ("id", "prefix", "name", "key_hash", "revoked_at", "expires_at", "last_used_at")
# Identifiers come from model metadata; the prefix is always a query parameter.
_LOOKUP_SQL = "SELECT {token}, {device} FROM {tokens} t JOIN {devices} d ON d.id = t.device_id WHERE {where}".format(  # noqa: S608
    token=", ".join(f"t.{name}" for name in _TOKEN_FIELDS),
    device=", ".join(f"d.{name}" for name in _DEVICE_FIELDS),
    tokens=DeviceToken._meta.db_table,
    devices=Device._meta.db_table,
    where="t.prefix IN ({placeholders})",
)


def _aware(value):
    """A datetime column as an aware UTC datetime, from MySQL (naive UTC) or SQLite (text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _lookup(prefixes: list[str]) -> dict[str, tuple[dict, Device]]:
    """Token rows (as dicts) and their devices for ``prefixes``, in one query."""
    if not prefixes:
        return {}
    placeholders = ", ".join(["%s"] * len(prefixes))
    with connection.cursor() as cursor:
        cursor.execute(_LOOKUP_SQL.format(placeholders=placeholders), prefixes)
        rows = cursor.fetchall()
    found = {}
    for row in rows:
        token = dict(zip(_TOKEN_FIELDS, row[: len(_TOKEN_FIELDS)], strict=True))
        for name in ("revoked_at", "expires_at", "last_used_at"):
            token[name] = _aware(token[name])
        values = list(row[len(_TOKEN_FIELDS) :])
        for index, name in enumerate(_DEVICE_FIELDS):
            if name in ("last_seen_at", "state_since"):
                values[index] = _aware(values[index])
            elif name in ("enabled", "online"):
                values[index] = bool(values[index])
        found[token["prefix"]] = (token, Device.from_db(connection.alias, _DEVICE_FIELDS, values))
    return found


def _check(plain: str, found: dict, now) -> Device | DeviceAuthError:
    prefix, dot, _ = plain.partition(".")
    if not dot or not prefix:
        return DeviceAuthError("Malformed device token: expected '<prefix>.<secret>'.", status=401)
    entry = found.get(prefix)
    if entry is None or not credential_matches(plain, entry[0]["key_hash"]):
        return DeviceAuthError("Unknown device token. Check the token or issue a new one.", status=401)
    token, device = entry
    if token["revoked_at"] is not None:
        return DeviceAuthError(f"Device token '{token['name']}' has been revoked; issue a new one.", status=403)
    if token["expires_at"] is not None and now >= token["expires_at"]:
        return DeviceAuthError(
            f"Device token '{token['name']}' expired at {token['expires_at'].isoformat()} after rotation; "
            "use the token that replaced it.",
            status=403,
        )
    if not device.enabled:
        return DeviceAuthError(f"Device '{device.uid}' is disabled; a plant admin can enable it.", status=403)
    return device


def tokens_authenticate_many(plains: list[str]) -> list[Device | DeviceAuthError]:
    """Authenticate several requests with one query; each result is a device or the error for it.

    Same rules as ``token_authenticate``. Updates ``last_used_at`` (at most once a minute per
    token) with one UPDATE for all of them.
    """
    now = timezone.now()
    found = _lookup(sorted({plain.partition(".")[0] for plain in plains if "." in plain}))
    results = [_check(plain, found, now) for plain in plains]
    stale = {
        token["id"]
        for plain, result in zip(plains, results, strict=True)
        if isinstance(result, Device)
        for token, _ in [found[plain.partition(".")[0]]]
        if token["last_used_at"] is None or now - token["last_used_at"] >= LAST_USED_RESOLUTION
    }
    if stale:
        DeviceToken.objects.filter(pk__in=stale).update(last_used_at=now)
    return results


def token_from_authorization(authorization: str) -> str:
    """The token of an ``Authorization: Device <token>`` header value, or ``DeviceAuthError`` (401).

    The one place that says how a device sends its token, for every transport (HTTP, WebSocket).
    """
    scheme, _, token = authorization.partition(" ")
    # Authentication schemes are case-insensitive (RFC 9110 §11.1); devices in the field vary.
    if scheme.lower() != "device" or not token.strip():
        raise DeviceAuthError(NO_CREDENTIAL, status=401)
    return token.strip()


def token_authenticate_header(authorization: str) -> Device:
    """``token_authenticate`` for an ``Authorization`` header value (401 when it holds no device token)."""
    return token_authenticate(token_from_authorization(authorization))


def token_authenticate(plain: str) -> Device:
    """Return the device a plain token belongs to, or raise ``DeviceAuthError``.

    401 for a malformed or unknown token; 403 for a revoked or expired token or a disabled
    device. Updates ``last_used_at`` (at most once a minute). The returned device has the
    fields ingest needs loaded (others load on access).
    """
    result = tokens_authenticate_many([plain])[0]
    if isinstance(result, DeviceAuthError):
        raise result
    return result


@transaction.atomic
def token_revoke(*, token: DeviceToken) -> bool:
    """Revoke ``token`` now. Idempotent: returns False if it was already revoked.

    When the broker holds it as the device's MQTT password, the broker refuses the device (and
    closes its connection) before this commits.
    """
    now = timezone.now()
    revoked = token.revoke(now)
    if revoked:
        audit_record(
            event="token_revoked", obj=token, action=AuditEntry.Action.UPDATE, changes={"revoked_at": (None, now)}
        )
    if revoked and broker.broker_managed():
        holder = broker_password_holders([token.device_id]).get(token.device_id)
        if holder is not None and holder.pk == token.pk:
            broker.broker_device_disable(uid=token.device.uid)
    return revoked


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
        changes = {"expires_at": (current.expires_at, expires_at)}
    else:
        current.revoke(now)
        changes = {"revoked_at": (None, now)}
    audit_record(
        event="token_rotated", obj=current, action=AuditEntry.Action.UPDATE, changes=changes, actor=by,
        data={"replacement": new_token.pk, "grace_seconds": grace_seconds},
    )  # fmt: skip
    token.refresh_from_db()
    return new_token, plain
