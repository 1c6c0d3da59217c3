from django.contrib import admin

from accounts.admin_scoping import PlantScopedAdmin
from devices.models import DeadLetter

REASON_EXCERPT = 120


@admin.register(DeadLetter)
class DeadLetterAdmin(PlantScopedAdmin):
    """Messages the ingest refused, with their reason: read-only, scoped through the device's plant.

    A dead letter of an unknown uid has no device and so no plant: only superusers see those
    (``scope_to_plants`` leaves rows without a plant out for everyone else).
    """

    plant_field = "device__plant"
    list_display = ["received_at", "device_uid", "topic", "transport", "reason_excerpt"]
    list_filter = ["transport", "received_at", "device__plant", ("device", admin.EmptyFieldListFilter)]
    search_fields = ["device_uid", "topic", "reason"]
    fields = ["received_at", "transport", "topic", "device_uid", "device", "reason", "payload"]
    readonly_fields = fields

    @admin.display(description="reason")
    def reason_excerpt(self, dead_letter):
        reason = dead_letter.reason
        return reason if len(reason) <= REASON_EXCERPT else reason[: REASON_EXCERPT - 1] + "…"

    def _may(self, request, obj) -> bool:
        if obj is not None and obj.device_id is None:
            return request.user.is_active and request.user.is_superuser
        return super()._may(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # kept for the retention period (``dead_letters_purge``), as evidence
