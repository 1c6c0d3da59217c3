"""The device admin's bulk import (preview, then all or nothing) and export (CSV, XLSX).

The same service as ``POST /api/v1/devices/import/`` and ``GET /api/v1/devices/export/``
(``devices.services.bulk``). The previewed file travels back with the "Apply" button in a hidden
field (base64), so nothing is stored between the two steps; applying checks every row again.
"""

import base64
import binascii

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from audit.services import audit_export
from devices.models import Device
from devices.services import bulk
from devices.services.broker import BrokerError


class DeviceImportForm(forms.Form):
    file = forms.FileField(
        required=False, help_text=f"CSV (UTF-8) or XLSX with a header row; columns: {', '.join(bulk.COLUMNS)}."
    )
    issue_tokens = forms.BooleanField(
        required=False, label="Issue a token for each new device (offered once, as a CSV download)"
    )
    token_name = forms.CharField(max_length=100, initial="import", label="Token name")
    content = forms.CharField(required=False, widget=forms.HiddenInput)  # the previewed file, base64
    file_name = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("file")
        if upload is not None:
            cleaned["raw"], cleaned["file_name"] = upload.read(), upload.name
        elif cleaned.get("content"):
            try:
                cleaned["raw"] = base64.b64decode(cleaned["content"], validate=True)
            except (binascii.Error, ValueError):
                raise forms.ValidationError("The previewed file was damaged: choose the file again.") from None
        else:
            raise forms.ValidationError("Choose a CSV or XLSX file to import.")
        try:
            cleaned["dataset"] = bulk.read_dataset(cleaned["raw"], cleaned.get("file_name") or "")
        except bulk.BulkFileError as exc:
            raise forms.ValidationError(str(exc)) from None
        return cleaned


def _download(data: bytes, file_format: str, name: str) -> HttpResponse:
    """The file as a download (the caller has recorded the export)."""
    response = HttpResponse(data, content_type=bulk.CONTENT_TYPES[file_format])
    response["Content-Disposition"] = f'attachment; filename="{name}.{file_format}"'
    return response


@admin.action(description="Export selected devices (CSV)")
def export_csv(modeladmin, request, queryset):
    return _exported(queryset, "csv")


@admin.action(description="Export selected devices (XLSX)")
def export_xlsx(modeladmin, request, queryset):
    return _exported(queryset, "xlsx")


def _exported(queryset, file_format: str) -> HttpResponse:
    data = bulk.devices_export(queryset, file_format)
    plants = queryset.order_by().values_list("plant_id", flat=True).distinct()
    audit_export(model=Device, plant_ids=list(plants), file_format=file_format, rows=queryset.count())
    return _download(data, file_format, "devices")


class DeviceImportAdminMixin:
    """Adds ``import/`` to the device admin: upload → per-row preview → apply (all or nothing)."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="devices_device_import"), *super().get_urls()]

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = DeviceImportForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            applying = "apply" in request.POST
            try:
                report = bulk.devices_import(
                    user=request.user,
                    dataset=data["dataset"],
                    dry_run=not applying,
                    issue_tokens=data["issue_tokens"],
                    token_name=data["token_name"],
                )
            except BrokerError as exc:
                self.message_user(request, f"{exc} Nothing was imported; try again.", messages.ERROR)
            else:
                if report.applied:
                    totals = report.totals
                    self.message_user(
                        request, f"Imported: {totals['create']} created, {totals['update']} updated, "
                        f"{totals['unchanged']} unchanged.",
                    )  # fmt: skip
                    if report.tokens:
                        # Sent once, straight to the browser: the plain tokens are stored nowhere.
                        return _download(bulk.tokens_csv(report.tokens), "csv", "device-tokens")
                    return redirect("admin:devices_device_changelist")
                # Preview, or an apply that found bad rows: show the rows; the file rides along.
                form = DeviceImportForm(
                    initial={
                        "content": base64.b64encode(data["raw"]).decode(),
                        "file_name": data.get("file_name") or "",
                        "issue_tokens": data["issue_tokens"],
                        "token_name": data["token_name"],
                    }
                )
                if applying:
                    self.message_user(request, "Nothing was imported: fix the rows marked below.", messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import devices",
            "opts": self.model._meta,
            "form": form,
            "report": report,
        }
        return TemplateResponse(request, "admin/devices/device/import.html", context)
