"""Admin: the command catalogue (staff, global like metrics) and the commands sent (read-only, plant-scoped)."""

import json

from django import forms
from django.contrib import admin

from accounts.admin_scoping import PlantScopedAdmin
from commands.models import Command, CommandDefinition, CommandEvent


class CommandDefinitionForm(forms.ModelForm):
    class Meta:
        model = CommandDefinition
        fields = ["model", "name", "label", "description", "params_schema", "role", "default_timeout", "enabled"]
        widgets = {"params_schema": forms.Textarea(attrs={"rows": 12, "cols": 80, "spellcheck": "false"})}


@admin.register(CommandDefinition)
class CommandDefinitionAdmin(admin.ModelAdmin):
    """Staff with the model permissions edit the catalogue; ``clean()`` checks the schema itself."""

    form = CommandDefinitionForm
    list_display = ["name", "model", "label", "role", "default_timeout", "enabled"]
    list_filter = ["role", "enabled", "model"]
    search_fields = ["name", "label", "model"]


class CommandEventInline(admin.TabularInline):
    model = CommandEvent
    fields = ["state", "at", "via", "by", "detail"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Command)
class CommandAdmin(PlantScopedAdmin):
    """The commands of the plants you administer, with their history; sent from the API or the machine page."""

    plant_field = "device__plant"
    list_display = ["id", "name", "device", "state", "created_by", "created_at", "finished_at"]
    list_filter = ["state", "name"]
    search_fields = ["name", "device__uid"]
    list_select_related = ["device", "created_by"]
    fields = ["device", "name", "params_json", "state", "created_by", "created_at", "expires_at", "delivered_at",
              "finished_at", "result_json"]  # fmt: skip
    readonly_fields = fields
    inlines = [CommandEventInline]

    @admin.display(description="params")
    def params_json(self, obj):
        return json.dumps(obj.params, indent=2)

    @admin.display(description="result")
    def result_json(self, obj):
        return "—" if obj.result is None else json.dumps(obj.result, indent=2)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
