"""Which models the audit log records, without which fields, and the plant each entry belongs to.

One table: every management model a person changes through the API or the admin. Never the
telemetry path (readings, rollups, latest values, machine states, dead letters), nor rows the
platform keeps for itself (alarm state machines, deliveries, rollout targets, OEE reports): those
are written in bulk or by workers, and a model registered here costs a SELECT of the old row on
every ``save()``. Alarm handling has its own journal (``AlarmEvent``: who, when, comment).

Credentials never reach an entry: token and key hashes are excluded, a password change is
recorded as ``***`` → ``***``, plain tokens and keys are never stored in the first place, and a
notification channel's ``config`` is recorded through ``redact``.
"""

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

from auditlog.registry import auditlog
from django.apps import apps

# Fields no entry records on any model: bookkeeping that changes on every save.
NOISE = ("updated_at",)


@dataclass(frozen=True)
class Tracked:
    model: str
    plant: str  # how to reach the plant id: "pk" (a plant), "plant_id", "<fk>.plant_id", "account", "" (none)
    exclude: tuple[str, ...] = ()
    m2m: tuple[str, ...] = ()
    mask: tuple[str, ...] = ()


TRACKED = [
    Tracked("accounts.User", "", exclude=("last_login",), m2m=("groups",), mask=("password",)),
    Tracked("accounts.ServiceAccount", "account"),
    Tracked("accounts.ApiKey", "account", exclude=("key_hash", "last_used_at")),
    Tracked("devices.Plant", "pk"),
    Tracked("devices.Line", "plant_id"),
    Tracked("devices.Device", "plant_id", exclude=("last_seen_at", "online", "state", "state_since")),
    Tracked("devices.DeviceGroup", "plant_id", m2m=("devices",)),
    Tracked("devices.DeviceToken", "device.plant_id", exclude=("key_hash", "last_used_at", "mqtt_password_at")),
    Tracked("devices.ProvisioningKey", "plant_id", exclude=("key_hash", "uses", "last_used_at")),
    Tracked("devices.ProvisioningRequest", "key.plant_id"),
    Tracked("devices.Metric", ""),
    Tracked("alerts.AlertRule", "plant_id"),
    Tracked("alerts.NotificationChannel", "plant_id", exclude=("status", "last_error", "failed_at"), mask=("config",)),
    Tracked("alerts.NotificationRoute", "plant_id", m2m=("users",)),
    Tracked("alerts.NotificationMute", "device.plant_id"),
    Tracked("analytics.Shift", "plant_id"),
    Tracked("analytics.ShiftBreak", "shift.plant_id"),
    Tracked("analytics.NonProductionDay", "plant_id"),
    Tracked("analytics.IdealCycleTime", "device.plant_id"),
    Tracked("analytics.ReasonCode", "plant_id"),
    Tracked("analytics.StopReason", "device.plant_id", exclude=("classified_at",)),
    Tracked("analytics.ReportSubscription", "plant_id"),
    Tracked("firmware.FirmwareImage", "plant_id"),
    Tracked("firmware.MaintenanceWindow", "plant_id"),
    Tracked("firmware.Rollout", "plant_id"),
    Tracked("production.Product", "plant_id"),
    Tracked("production.ProductCycleTime", "product.plant_id"),
    Tracked("production.Order", "plant_id"),
    Tracked("production.Run", "device.plant_id"),
    Tracked("commands.CommandDefinition", ""),
    # Who sent what to which device; its delivery and result are the command's own history (CommandEvent).
    Tracked("commands.Command", "device.plant_id", exclude=("state", "delivered_at", "finished_at", "result")),
    # A superuser pausing a periodic task (retention, alarm timers…) in the admin; beat's own
    # bookkeeping after each run is not a change.
    Tracked(
        "django_celery_beat.PeriodicTask", "", exclude=("last_run_at", "total_run_count", "no_changes", "date_changed")
    ),
]

_PLANT_PATHS: dict[type, str] = {}


def register_tracked_models() -> None:
    """Register every ``TRACKED`` model with django-auditlog (``AuditConfig.ready``)."""
    for tracked in TRACKED:
        model = apps.get_model(tracked.model)
        _PLANT_PATHS[model] = tracked.plant
        auditlog.register(
            model,
            exclude_fields=[*NOISE, *tracked.exclude],
            m2m_fields=set(tracked.m2m),
            mask_fields=list(tracked.mask),
            mask_callable="audit.registry.redact" if tracked.mask else None,
        )


def _related_plant_id(instance, fk: str) -> int | None:
    """The plant id of ``instance.<fk>``, from the loaded object when there is one (no query)."""
    field = instance._meta.get_field(fk)
    cached = instance._state.fields_cache.get(fk)
    if cached is not None:
        return getattr(cached, "plant_id", None)
    related_id = getattr(instance, field.attname)
    if related_id is None:
        return None
    return field.related_model._default_manager.filter(pk=related_id).values_list("plant_id", flat=True).first()


def account_plant_id(account) -> int | None:
    """The first plant (by id) a service account holds a role on; None before it has one."""
    from accounts.models import PlantRole

    return (
        PlantRole.objects.filter(group__user=account.user_id).order_by("plant_id").values_list("plant_id", flat=True)
    ).first()


def plant_id_of(instance) -> int | None:
    """The plant an entry about ``instance`` belongs to (None: superusers only)."""
    path = _PLANT_PATHS.get(type(instance), "")
    if path == "pk":
        return instance.pk
    if path == "plant_id":
        return instance.plant_id
    if path == "account":
        account = instance if instance._meta.model_name == "serviceaccount" else instance.account
        return account_plant_id(account)
    if path.endswith(".plant_id"):
        return _related_plant_id(instance, path.split(".")[0])
    return None


_SECRET_WORDS = ("secret", "token", "password", "key", "auth", "sid", "signature", "header")


def _redacted(value, name: str = ""):
    if any(word in name.lower() for word in _SECRET_WORDS):
        return "***"
    if isinstance(value, dict):
        return {key: _redacted(item, key) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item, name) for item in value]
    if isinstance(value, str) and "://" in value:
        parts = urlsplit(value)  # the receiver's host is what a reviewer needs; paths and queries carry secrets
        host = parts.hostname or ""
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}/…"
    return value


def redact(value: str) -> str:
    """django-auditlog's mask for secret-bearing fields. A channel's ``config`` (JSON text) keeps its
    shape: secrets become ``***`` and URLs keep only their scheme and host, so an entry shows where
    messages go but no credential. Anything else (a password hash) becomes ``***``: the entry
    says that it changed, never to what."""
    if value in ("None", ""):
        return value
    try:
        config = json.loads(value)
    except (TypeError, ValueError):
        return "***"
    if not isinstance(config, dict | list):
        return "***"
    return json.dumps(_redacted(config), sort_keys=True, ensure_ascii=False)
