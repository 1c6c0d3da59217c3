"""Provisioning keys and the approval list in the admin (plant admins, their plants only).

Keys are created through the API (``POST /api/v1/provisioning-keys/``), which shows the plain key
once; here they can be reviewed and revoked, and waiting devices approved or rejected.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.admin_scoping import PlantScopedAdmin
from devices.models import ProvisioningKey, ProvisioningRequest
from devices.services.broker import BrokerError
from devices.services.provisioning import provisioning_key_revoke, provisioning_request_decide


@admin.register(ProvisioningKey)
class ProvisioningKeyAdmin(PlantScopedAdmin):
    list_display = ["name", "plant", "line", "model", "prefix", "needs_approval", "uses", "max_uses", "expires_at",
                    "active", "last_used_at"]  # fmt: skip
    list_filter = ["plant", "needs_approval", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "model"]
    list_select_related = ["plant", "line"]
    # Plant and line stay as created (the API checks that the line is in the plant).
    readonly_fields = ["plant", "line", "prefix", "uses", "created_at", "created_by", "last_used_at", "revoked_at"]
    fields = ["plant", "line", "model", "name", "prefix", "needs_approval", "expires_at", "max_uses",
              "uses", "created_at", "created_by", "last_used_at", "revoked_at"]  # fmt: skip
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False  # the API creates keys: the plain key is shown once there

    @admin.display(boolean=True)
    def active(self, key):
        return key.refusal(timezone.now()) is None

    @admin.action(description="Revoke selected keys (devices can no longer register with them)")
    def revoke(self, request, queryset):
        count = sum(provisioning_key_revoke(key=key) for key in queryset)
        self.message_user(request, f"Revoked {count} provisioning key(s).")


@admin.register(ProvisioningRequest)
class ProvisioningRequestAdmin(PlantScopedAdmin):
    plant_field = "key__plant"
    list_display = ["uid", "name", "kind", "model", "key", "status", "address", "created_at", "decided_by"]
    list_filter = ["status", "key__plant"]
    search_fields = ["uid", "name", "model", "address"]
    list_select_related = ["key", "decided_by"]
    readonly_fields = [f.name for f in ProvisioningRequest._meta.fields]
    actions = ["approve", "reject"]

    def has_add_permission(self, request):
        return False

    def _decide(self, request, queryset, approve: bool) -> None:
        done, problems = 0, []
        for pending in queryset:
            try:
                provisioning_request_decide(request=pending, approve=approve, by=request.user)
                done += 1
            except (ValidationError, BrokerError) as exc:
                problems.append(f"{pending.uid}: {'; '.join(getattr(exc, 'messages', [str(exc)]))}")
        verb = "Approved" if approve else "Rejected"
        self.message_user(request, f"{verb} {done} device(s); they collect their tokens on their next call."
                          if approve else f"{verb} {done} device(s).")  # fmt: skip
        if problems:
            self.message_user(request, " ".join(problems), messages.ERROR)

    @admin.action(description="Approve selected devices (created now; each collects its token on its next call)")
    def approve(self, request, queryset):
        self._decide(request, queryset, True)

    @admin.action(description="Reject selected devices")
    def reject(self, request, queryset):
        self._decide(request, queryset, False)
