from contextlib import contextmanager

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from guardian.admin import GuardedModelAdminMixin

from accounts.admin_scoping import PlantScopedAdmin
from devices.admin import actions
from devices.admin.members import PlantMembersMixin
from devices.models import Device, DeviceGroup, DeviceToken, Line, Plant
from devices.selectors import latest_values
from devices.services.broker import BrokerError
from devices.services.plants import plant_create
from devices.services.registry import device_delete, device_update
from devices.services.tokens import token_revoke


class SuperuserObjectPermissionsMixin(GuardedModelAdminMixin):
    """guardian's object-permission pages, for superusers only.

    Plant admins grant roles on the members page. Raw grants made here bypass that page's
    last-admin guard and do not show in its list, so only superusers (auditing or repairing
    permissions) may use them.
    """

    def _superuser_only(self, request):
        if not request.user.is_superuser:
            raise PermissionDenied

    def obj_perms_manage_view(self, request, object_pk):
        self._superuser_only(request)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._superuser_only(request)
        return super().obj_perms_manage_user_view(request, object_pk, user_id)

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._superuser_only(request)
        return super().obj_perms_manage_group_view(request, object_pk, group_id)

    def render_change_form(self, request, context, *args, **kwargs):
        context["show_object_permissions"] = request.user.is_superuser
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(Plant)
class PlantAdmin(PlantMembersMixin, SuperuserObjectPermissionsMixin, PlantScopedAdmin):
    change_form_template = "admin/devices/plant/change_form.html"
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

    # Read-only, shown to whoever may view the device (the stock inline asks for global permissions,
    # which plant admins do not have).
    def has_view_permission(self, request, obj=None):
        return self.admin_site.get_model_admin(self.parent_model).has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request, obj=None):
        return False  # tokens are issued with the "Issue tokens" action, which shows the plain token once


class DeviceChangeList(ChangeList):
    """Loads the latest values of the devices on the page in one query (or none, when cached)."""

    def get_results(self, request):
        super().get_results(request)
        values = latest_values([device.pk for device in self.result_list])
        for device in self.result_list:
            device.latest_values = values.get(device.pk, {})


LATEST_SHOWN = 4


@admin.register(Device)
class DeviceAdmin(PlantScopedAdmin):
    list_display = [
        "uid",
        "name",
        "kind",
        "plant",
        "line",
        "model",
        "firmware_version",
        "enabled",
        "online",
        "state",
        "last_seen_at",
        "latest",
    ]
    list_filter = ["kind", "enabled", "plant", "line", "model", "groups"]
    search_fields = ["uid", "name", "serial_number", "model", "location"]
    list_select_related = ["plant", "line__plant"]  # a line's label shows its plant's name
    readonly_fields = ["last_seen_at", "created_at", "updated_at"]
    inlines = [DeviceTokenInline]
    actions = [
        actions.enable,
        actions.disable,
        actions.move,
        actions.add_to_group,
        actions.remove_from_group,
        actions.issue_tokens,
    ]

    def save_model(self, request, obj, form, change):
        if change:
            with self._broker_must_agree(request):
                device_update(device=obj)  # the form has set the fields; the service records what follows
        else:
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        with self._broker_must_agree(request):
            device_delete(device=obj)  # the MQTT broker forgets it too

    def delete_queryset(self, request, queryset):
        with self._broker_must_agree(request):
            for device in queryset:
                device_delete(device=device)

    @contextmanager
    def _broker_must_agree(self, request):
        """The admin's views run in one transaction: undo it when the MQTT broker did not answer."""
        try:
            yield
        except BrokerError as exc:
            transaction.set_rollback(True)
            self.message_user(request, f"{exc} Nothing was changed; try again.", messages.ERROR)

    @admin.display(boolean=True)
    def online(self, device):
        return device.is_online(timezone.now())

    def get_changelist(self, request, **kwargs):
        return DeviceChangeList

    @admin.display(description="latest values")
    def latest(self, device):
        values = getattr(device, "latest_values", None)
        if not values:
            return "–"
        shown = [f"{name} {reading['value']:g}" for name, reading in sorted(values.items())[:LATEST_SHOWN]]
        more = len(values) - LATEST_SHOWN
        return " · ".join(shown) + (f" (+{more})" if more > 0 else "")


class DeviceGroupForm(forms.ModelForm):
    """A group holds devices of its own plant only (as ``group_set_devices`` and the API insist)."""

    def clean(self):
        cleaned = super().clean()
        # On the change page the plant is read-only, so it comes from the instance.
        plant = cleaned.get("plant") or (self.instance.plant if self.instance.plant_id else None)
        devices = cleaned.get("devices")
        if plant is not None and devices is not None:
            foreign = [d.uid for d in devices if d.plant_id != plant.pk]
            if foreign:
                self.add_error(
                    "devices", f"Group of plant '{plant.name}' cannot hold {', '.join(foreign)} of another plant."
                )
        return cleaned


@admin.register(DeviceGroup)
class DeviceGroupAdmin(PlantScopedAdmin):
    form = DeviceGroupForm
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
        try:
            count = sum(token_revoke(token=token) for token in queryset)
        except BrokerError as exc:  # revoked up to here; the rest stay as they were
            self.message_user(request, f"{exc} Revoke the remaining tokens again.", messages.ERROR)
            return
        self.message_user(request, f"Revoked {count} token(s).")
