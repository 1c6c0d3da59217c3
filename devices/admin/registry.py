from django.contrib import admin
from django.db.models import Count
from django.utils import timezone
from guardian.admin import GuardedModelAdminMixin

from accounts.admin_scoping import PlantScopedAdmin
from devices.admin import actions
from devices.admin.members import PlantMembersMixin
from devices.models import Device, DeviceGroup, DeviceToken, Line, Plant
from devices.services.plants import plant_create
from devices.services.tokens import token_revoke


@admin.register(Plant)
class PlantAdmin(PlantMembersMixin, GuardedModelAdminMixin, PlantScopedAdmin):
    plant_field = ""
    list_display = ["name", "time_zone", "address", "created_at"]
    search_fields = ["name", "address"]
    readonly_fields = ["members_link", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return request.user.has_perm("devices.add_plant")

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        fields = {f: form.cleaned_data[f] for f in ("description", "address")}
        created = plant_create(name=obj.name, time_zone=obj.time_zone, created_by=request.user, **fields)
        obj.pk = created.pk


@admin.register(Line)
class LineAdmin(PlantScopedAdmin):
    list_display = ["name", "plant", "position", "created_at"]
    list_filter = ["plant"]
    search_fields = ["name", "description"]
    list_select_related = ["plant"]


class DeviceTokenInline(admin.TabularInline):
    model = DeviceToken
    extra = 0
    can_delete = False
    fields = ["name", "prefix", "created_at", "created_by", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # tokens are issued with the "Issue tokens" action, which shows the plain token once


@admin.register(Device)
class DeviceAdmin(PlantScopedAdmin):
    list_display = ["uid", "name", "kind", "plant", "line", "model", "firmware_version", "enabled", "online", "last_seen_at"]
    list_filter = ["kind", "enabled", "plant", "line", "model", "groups"]
    search_fields = ["uid", "name", "serial_number", "model", "location"]
    list_select_related = ["plant", "line"]
    readonly_fields = ["last_seen_at", "created_at", "updated_at"]
    inlines = [DeviceTokenInline]
    actions = [actions.enable, actions.disable, actions.move, actions.add_to_group, actions.remove_from_group, actions.issue_tokens]

    @admin.display(boolean=True)
    def online(self, device):
        return device.is_online(timezone.now())


@admin.register(DeviceGroup)
class DeviceGroupAdmin(PlantScopedAdmin):
    list_display = ["name", "plant", "device_count", "created_at"]
    list_filter = ["plant"]
    search_fields = ["name", "description"]
    filter_horizontal = ["devices"]
    list_select_related = ["plant"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(device_total=Count("devices"))

    @admin.display(description="devices", ordering="device_total")
    def device_count(self, group):
        return group.device_total


@admin.register(DeviceToken)
class DeviceTokenAdmin(PlantScopedAdmin):
    plant_field = "device__plant"
    list_display = ["name", "device", "prefix", "created_at", "last_used_at", "active", "revoked_at"]
    list_filter = ["device__plant", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix", "device__uid"]
    list_select_related = ["device"]
    fields = ["device", "name", "prefix", "created_at", "created_by", "last_used_at", "expires_at", "revoked_at"]
    readonly_fields = ["device", "prefix", "created_at", "created_by", "last_used_at", "expires_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.display(boolean=True)
    def active(self, token):
        return token.is_active(timezone.now())

    @admin.action(description="Revoke selected tokens (the device is refused from its next request)")
    def revoke(self, request, queryset):
        count = sum(token_revoke(token=token) for token in queryset)
        self.message_user(request, f"Revoked {count} token(s).")
