"""The audit log in the admin: read-only, superusers see every entry, plant admins their plants'."""

from auditlog.filters import ResourceTypeFilter
from auditlog.mixins import LogEntryAdminMixin
from django.contrib import admin
from django.http import StreamingHttpResponse

from accounts.admin_scoping import PlantScopedAdmin
from audit.export import audit_csv_lines, audit_csv_name
from audit.models import AuditEntry
from audit.services import audit_export

if admin.site.is_registered(AuditEntry):
    admin.site.unregister(AuditEntry)  # django-auditlog's own admin: unscoped, and deletes entries


@admin.action(description="Export selected entries (CSV)")
def export_csv(modeladmin, request, queryset):
    entries = queryset.select_related("actor", "content_type").order_by("-timestamp", "-pk")
    plants = entries.exclude(plant=None).values_list("plant_id", flat=True).distinct()
    audit_export(model=AuditEntry, plant_ids=list(plants), file_format="csv", rows=entries.count())
    response = StreamingHttpResponse(audit_csv_lines(entries), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{audit_csv_name()}"'
    return response


@admin.register(AuditEntry)
class AuditEntryAdmin(LogEntryAdminMixin, PlantScopedAdmin):
    """Nobody adds, changes or deletes an entry here; ``AUDIT_RETENTION_DAYS`` removes old ones."""

    date_hierarchy = "timestamp"
    list_select_related = ["content_type", "actor", "plant"]
    list_display = ["created", "plant", "event_name", "resource_url", "msg_short", "user_url", "remote_addr"]
    list_filter = ["action", "event", "plant", ResourceTypeFilter]
    search_fields = ["object_repr", "object_pk", "actor__username", "actor_email", "remote_addr", "event"]
    fields = ["created", "plant", "event_name", "user_url", "actor_email", "remote_addr", "resource_url", "msg",
              "additional_data"]  # fmt: skip
    readonly_fields = fields
    actions = [export_csv]

    @admin.display(description="Event")
    def event_name(self, obj):
        return obj.event_name

    def get_queryset(self, request):
        self.request = request  # LogEntryAdminMixin.cid_url reads it
        return super().get_queryset(request)

    def has_view_permission(self, request, obj=None):
        return self._administers_any(request)  # an entry outside the user's plants is not in get_queryset: 404

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
