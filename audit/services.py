"""Writes to the audit log beyond django-auditlog's model writes, and its retention."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db.models import Model

from audit.models import AuditEntry


def _text(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def audit_record(
    *, event: str, obj: Model | None = None, model: type[Model] | None = None, plant=None,
    action: int = AuditEntry.Action.ACCESS, changes: dict | None = None, data: dict | None = None,
    actor=None, object_repr: str = "", request=None,
) -> AuditEntry:  # fmt: skip
    """Record ``event`` (``login_failed``, ``token_revoked``, ``rollout_paused``, ``export``…) about
    ``obj`` (or, with no single object, about ``model``) as one immutable entry.

    ``plant`` (a Plant or its id) scopes who sees it; by default the plant of ``obj`` as for model
    writes. ``changes`` maps a field to ``(before, after)``, shown like a model write's. The actor
    and client address default to the current request's (``audit.middleware``); pass ``request``
    where a signal hands one over outside the middleware. Never pass a credential in ``data``.
    """
    from audit.registry import plant_id_of

    if plant is None and obj is not None:
        plant = plant_id_of(obj)
    entry = AuditEntry(
        event=event,
        action=action,
        content_type=ContentType.objects.get_for_model(obj if obj is not None else model),
        object_pk=str(obj.pk) if obj is not None else "",
        object_id=obj.pk if obj is not None and isinstance(obj.pk, int) else None,
        object_repr=(object_repr or (str(obj) if obj is not None else ""))[:1000],
        changes={field: [_text(before), _text(after)] for field, (before, after) in (changes or {}).items()},
        additional_data=data or None,
        plant_id=getattr(plant, "pk", plant),
    )
    if actor is not None and getattr(actor, "is_authenticated", False):
        entry.actor, entry.actor_email = actor, actor.email or None
    if request is not None:
        from factory.clientip import client_ip

        entry.remote_addr = client_ip(request) or None
    entry.save()
    return entry


def audit_export(*, model: type[Model], plant_ids, file_format: str, rows: int | None = None, what: str = "") -> None:
    """Record a download (CSV, XLSX) of ``model`` rows: one entry per plant the file covers, so each
    plant's admins see it (one entry without a plant when it covers none)."""
    data = {"format": file_format, **({"rows": rows} if rows is not None else {})}
    label = what or f"{model._meta.verbose_name_plural} ({file_format})"
    for plant_id in sorted(set(plant_ids)) or [None]:
        audit_record(event="export", model=model, plant=plant_id, data=data, object_repr=label)


def audit_entries_purge(*, now: datetime, batch: int = 5000) -> int:
    """Delete entries older than ``AUDIT_RETENTION_DAYS`` in batches (beat, daily); returns how many.

    The only way entries leave the log: the admin and the API cannot change or delete one.
    Idempotent: a second run finds nothing left to delete.
    """
    cutoff = now - timedelta(days=settings.AUDIT_RETENTION_DAYS)
    deleted = 0
    while True:
        ids = list(AuditEntry.objects.filter(timestamp__lt=cutoff).order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            return deleted
        deleted += AuditEntry.objects.filter(pk__in=ids).delete()[0]


def auditlog_paused():
    """A context in which django-auditlog records no model write: for a service that records one
    entry of its own for a change made of several rows (a role change is group memberships)."""
    from auditlog.context import disable_auditlog

    return disable_auditlog()
