"""Batch actions of the device admin. They call the same service as ``POST /api/v1/devices/batch/``."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from accounts.roles import PERM_MANAGE
from accounts.selectors import scope_to_plants
from devices.models import DeviceGroup, Line
from devices.services.broker import BrokerError
from devices.services.registry import devices_batch


class _TargetForm(forms.Form):
    target = forms.ModelChoiceField(queryset=None)

    def __init__(self, *args, queryset, label, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target"].queryset = queryset
        self.fields["target"].label = label


class _TokenForm(forms.Form):
    target = forms.CharField(max_length=100, label="Token name", initial="provisioned")


def _run(modeladmin, request, queryset, action, **kwargs):
    try:
        result = devices_batch(action=action, devices=list(queryset), by=request.user, **kwargs)
    except ValidationError as exc:
        modeladmin.message_user(request, "; ".join(exc.messages), messages.ERROR)
        return None
    except BrokerError as exc:  # the batch rolled back: the MQTT broker must agree or nothing changes
        modeladmin.message_user(request, f"{exc} Nothing was changed; try again.", messages.ERROR)
        return None
    modeladmin.message_user(request, f"{action.replace('_', ' ').capitalize()}: {result['count']} device(s).")
    return result


def _intermediate(modeladmin, request, queryset, action, title, form):
    """Show a form asking for the target of the action; POSTed back with ``apply``."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "queryset": queryset,
        "form": form,
        "action": request.POST["action"],
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "opts": modeladmin.model._meta,
    }
    return TemplateResponse(request, "admin/devices/batch_action.html", context)


def _target_action(action, title, label, model):
    def handler(modeladmin, request, queryset):
        choices = scope_to_plants(model.objects.select_related("plant"), request.user, PERM_MANAGE)
        form = _TargetForm(request.POST if "apply" in request.POST else None, queryset=choices, label=label)
        if form.is_valid():
            key = "line" if model is Line else "target_group"
            _run(modeladmin, request, queryset, action, **{key: form.cleaned_data["target"]})
            return None
        return _intermediate(modeladmin, request, queryset, action, title, form)

    handler.__name__ = action
    return admin.action(description=title)(handler)


@admin.action(description="Enable selected devices")
def enable(modeladmin, request, queryset):
    _run(modeladmin, request, queryset, "enable")


@admin.action(description="Disable selected devices (refused at ingest)")
def disable(modeladmin, request, queryset):
    _run(modeladmin, request, queryset, "disable")


move = _target_action("move", "Move selected devices to a line", "Line", Line)
add_to_group = _target_action("add_to_group", "Add selected devices to a group", "Group", DeviceGroup)
remove_from_group = _target_action("remove_from_group", "Remove selected devices from a group", "Group", DeviceGroup)


@admin.action(description="Issue a new token for each selected device")
def issue_tokens(modeladmin, request, queryset):
    form = _TokenForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():
        return _intermediate(modeladmin, request, queryset, "issue_tokens", "Issue device tokens", form)
    result = _run(modeladmin, request, queryset, "issue_tokens", token_name=form.cleaned_data["target"])
    if result is None:
        return None
    # Rendered directly (never stored in a message or the session): this page is the only place
    # the plain tokens ever appear.
    context = {**modeladmin.admin_site.each_context(request), "title": "New device tokens", "tokens": result["tokens"]}
    return TemplateResponse(request, "admin/devices/issued_tokens.html", context)
