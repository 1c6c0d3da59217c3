from contextlib import contextmanager

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from guardian.admin import GuardedModelAdminMixin

from accounts.admin_scoping import PlantScopedAdmin
from devices.admin import actions
from devices.admin.bulk import DeviceImportAdminMixin, export_csv, export_xlsx
from devices.admin.members import PlantMembersMixin
from devices.formats import format_time, format_value, metric_formats
from devices.models import Device, DeviceGroup, DeviceToken, Line, Metric, Plant
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


def _local(ts, tz, now) -> str:
    """A compact plant-local time: ``14:05`` today, ``3 Dec 14:05`` before, ``3 Dec 2025`` in another year."""
    ts, now = ts.astimezone(tz), now.astimezone(tz)
    if ts.date() == now.date():
        return f"{ts:%H:%M}"
    return f"{ts.day} {ts:%b %H:%M}" if ts.year == now.year else f"{ts.day} {ts:%b %Y}"


@admin.register(Device)
class DeviceAdmin(DeviceImportAdminMixin, PlantScopedAdmin):
    # One line per device (the columns are short and do not wrap, see the change list template):
    # the latest values are on the device's own page, where each has its unit and time.
    # Status says "disabled" too, and kind is a filter: the columns fit beside both sidebars.
    list_display = ["uid", "name", "status", "last_seen", "plant", "line_name", "hardware", "firmware"]
    list_filter = ["kind", "enabled", "plant", "line", "model", "groups"]
    search_fields = ["uid", "name", "serial_number", "model", "location"]
    list_select_related = ["plant", "line"]
    readonly_fields = ["latest_values", "last_seen_at", "created_at", "updated_at"]
    inlines = [DeviceTokenInline]
    actions = [
        actions.enable,
        actions.disable,
        actions.move,
        actions.add_to_group,
        actions.remove_from_group,
        actions.issue_tokens,
        export_csv,
        export_xlsx,
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

    @admin.display(description="line", ordering="line__name")
    def line_name(self, device):
        return device.line.name if device.line_id else "–"

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if self._administers_one_plant(request):
            columns.remove("plant")  # one plant: the column would repeat its name on every row
        return columns

    @admin.display(description="status", ordering="state")
    def status(self, device):
        """``disabled``, ``offline``, else the machine state (``running``, ``down``…), else ``online``."""
        if not device.enabled:
            return "disabled"
        if not device.is_online(timezone.now()):
            return "offline"
        return (device.state or "online").replace("_", " ")

    @admin.display(description="model", ordering="model")
    def hardware(self, device):
        return device.model or "–"

    @admin.display(description="firmware", ordering="firmware_version")
    def firmware(self, device):
        return device.firmware_version or "–"

    @admin.display(description="last seen", ordering="last_seen_at")
    def last_seen(self, device):
        if device.last_seen_at is None:
            return "never"
        tz = device.plant.tz
        full = device.last_seen_at.astimezone(tz)
        return format_html(
            '<time datetime="{}" title="{} ({})">{}</time>',
            full.isoformat(), f"{full:%Y-%m-%d %H:%M:%S}", tz.key, _local(full, tz, timezone.now()),
        )  # fmt: skip

    @admin.display(description="latest values")
    def latest_values(self, device):
        if device.pk is None:
            return "–"
        values = latest_values([device.pk]).get(device.pk, {})
        if not values:
            return "No values received yet."
        formats = metric_formats(values, Metric.objects.filter(name__in=values))
        tz = device.plant.tz
        rows = format_html_join(
            "",
            "<tr><th scope='row' title='{}'>{}</th><td>{}</td><td>{}</td></tr>",
            (
                (name, formats[name]["label"], format_value(reading["value"], formats[name]),
                 format_time(reading["ts"], tz, seconds=True))
                for name, reading in sorted(values.items())
            ),
        )  # fmt: skip
        return format_html(
            "<table><thead><tr><th scope='col'>metric</th><th scope='col'>value</th>"
            "<th scope='col'>at ({})</th></tr></thead><tbody>{}</tbody></table>",
            tz.key,
            rows,
        )


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

    def has_delete_permission(self, request, obj=None):
        # Revoke instead: a deleted row no longer says that the MQTT broker holds the token as the
        # device's password (mqtt_password_at), so the broker would go on accepting it.
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
