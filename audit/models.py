"""The audit log: django-auditlog's entry with the plant it belongs to and the event it records.

``AUDITLOG_LOGENTRY_MODEL`` points django-auditlog at ``AuditEntry``, so model writes (create,
update, delete, with the changed fields before → after) and our own events (logins, token
revocations, rollout actions, exports: ``event``) land in one table, searched by plant.
"""

from auditlog.models import AbstractLogEntry, LogEntryManager
from django.core.exceptions import PermissionDenied
from django.db import models


class AuditEntryManager(LogEntryManager):
    """django-auditlog's manager, filling in the plant of the object each entry is about."""

    def log_create(self, instance, force_log: bool = False, **kwargs):
        from audit.registry import plant_id_of

        kwargs.setdefault("plant_id", plant_id_of(instance))
        return super().log_create(instance, force_log=force_log, **kwargs)

    def log_m2m_changes(self, changed_queryset, instance, operation, field_name, **kwargs):
        from audit.registry import plant_id_of

        kwargs.setdefault("plant_id", plant_id_of(instance))
        return super().log_m2m_changes(changed_queryset, instance, operation, field_name, **kwargs)


class AuditEntry(AbstractLogEntry):
    """Who did what to which object, when and from where. Written once, never changed.

    ``plant`` is the plant the object belonged to (no database constraint: an entry outlives its
    plant and keeps naming it); empty for entries about accounts and global settings, which only
    superusers see. ``event`` names what a non-write entry records (``login_failed``,
    ``token_revoked``, ``rollout_paused``, ``export``…); empty for plain model writes.
    """

    plant = models.ForeignKey(
        "devices.Plant", on_delete=models.DO_NOTHING, db_constraint=False, null=True, blank=True, related_name="+"
    )
    event = models.CharField(max_length=40, blank=True, db_index=True)

    objects = AuditEntryManager()

    class Meta(AbstractLogEntry.Meta):
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [models.Index(fields=["plant", "timestamp"], name="audit_plant_time")]

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise PermissionDenied("Audit entries are immutable.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionDenied("Audit entries are immutable; AUDIT_RETENTION_DAYS removes old ones.")

    @property
    def event_name(self) -> str:
        """``event``, or the model write it records (create, update, delete)."""
        return self.event or self.get_action_display()
