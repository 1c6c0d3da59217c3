"""``GET /api/v1/audit/`` (search) and ``GET /api/v1/audit/export/`` (the same list as CSV).

Superusers read every entry, plant admins the entries of the plants they administer; anyone else
gets 403. Read-only: there is no way to change or delete an entry through the API.
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer

from accounts.roles import PERM_MANAGE
from accounts.selectors import plant_list_for
from audit.api.filters import AuditEntryFilterSet
from audit.api.serializers import AuditEntrySerializer
from audit.export import audit_csv_lines, audit_csv_name
from audit.models import AuditEntry
from audit.selectors import audit_entry_list_for, audit_reader
from audit.services import audit_export


class IsAuditReader(BasePermission):
    message = "The audit log is for plant admins (their plants' entries) and superusers. Ask a plant admin."

    def has_permission(self, request, view):
        return audit_reader(request.user)


class CSVRenderer(BaseRenderer):
    media_type, format, charset = "text/csv", "csv", None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)  # only errors reach a renderer: the CSV is streamed


async def _async_blocks(blocks):
    # Under ASGI Django buffers a synchronous iterator whole; an asynchronous one streams.
    while (block := await sync_to_async(next, thread_sensitive=True)(blocks, None)) is not None:
        yield block


class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """Audit entries, newest first. Filter by plant, actor (username), action, event, object_type,
    object_id, since/until (ISO 8601); ``search`` looks in the object, actor, address, event and changes."""

    serializer_class = AuditEntrySerializer
    permission_classes = [IsAuthenticated, IsAuditReader]
    filterset_class = AuditEntryFilterSet
    search_fields = ["object_repr", "object_pk", "actor__username", "actor_email", "remote_addr", "event", "changes"]
    ordering_fields = ["timestamp"]
    queryset = AuditEntry.objects.none()  # for the schema; get_queryset scopes

    def get_queryset(self):
        return audit_entry_list_for(self.request.user)

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=False, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer], pagination_class=None)
    def export(self, request):
        """The filtered list as CSV (every matching entry, not one page). The download is itself audited."""
        entries = self.filter_queryset(self.get_queryset())
        # One entry per plant the file covers (each plant's admins see who exported their entries).
        plants = plant_list_for(request.user, PERM_MANAGE).values_list("pk", flat=True)
        if request.query_params.get("plant"):  # validated by the filter set above
            plants = plants.filter(pk=int(request.query_params["plant"]))
        elif request.user.is_superuser:
            plants = plants.none()  # every plant: one entry without a plant
        audit_export(model=AuditEntry, plant_ids=list(plants), file_format="csv", rows=entries.count())
        blocks = audit_csv_lines(entries)
        content = _async_blocks(blocks) if isinstance(request._request, ASGIRequest) else blocks
        response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{audit_csv_name()}"'
        return response
