"""Admin pages for the shift calendar, reason codes, stop reasons and OEE reports, scoped to the
plants the user administers (``PlantScopedAdmin``). Reports are read-only, downloadable as CSV and
can be (re)computed and e-mailed from here."""

from datetime import timedelta

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from accounts.admin_scoping import PlantScopedAdmin
from analytics.calendar import occurrences
from analytics.models import NonProductionDay, OEEReport, ReasonCode, ReportSubscription, Shift, ShiftBreak, StopReason
from analytics.reports import report_csv
from analytics.services import calendar_changed, calendar_entries_delete, shift_validate
from analytics.tasks import run_oee_report
from audit.services import audit_record


class BreakFormSet(BaseInlineFormSet):
    """Validates the shift with its breaks as ``shift_save`` does (breaks inside, no overlapping shifts)."""

    def clean(self):
        super().clean()
        shift = self.instance
        if shift.plant_id is None or shift.start is None or shift.end is None:
            return
        breaks = [
            (f.cleaned_data["start"], f.cleaned_data["end"])
            for f in self.forms
            if f.cleaned_data and not f.cleaned_data.get("DELETE")
        ]
        try:
            shift_validate(
                plant=shift.plant,
                start=shift.start,
                end=shift.end,
                weekdays=shift.weekdays,
                breaks=breaks,
                exclude_pk=shift.pk,
            )
        except ValidationError as exc:
            raise ValidationError([m for messages_ in exc.message_dict.values() for m in messages_]) from None


class ShiftBreakInline(admin.TabularInline):
    model = ShiftBreak
    formset = BreakFormSet
    extra = 1


class CalendarAdmin(PlantScopedAdmin):
    """Shifts and non-production days: after every change the plant's stored OEE days are recomputed
    (``analytics.services.calendar_changed``, ``calendar_entries_delete``)."""

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # the shift's breaks are saved here
        calendar_changed(plants=[form.instance.plant])

    def delete_model(self, request, obj):
        calendar_entries_delete(entries=type(obj).objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        calendar_entries_delete(entries=queryset)


@admin.register(Shift)
class ShiftAdmin(CalendarAdmin):
    list_display = ["name", "plant", "start", "end", "weekdays"]
    list_filter = ["plant"]
    inlines = [ShiftBreakInline]
    actions = ["run_last_report"]

    @admin.action(description="Run and e-mail the report of each selected shift's last closed occurrence")
    def run_last_report(self, request, queryset):
        now = timezone.now()
        for shift in queryset.select_related("plant").prefetch_related("breaks"):
            tz = shift.plant.tz
            closed = [o for o in occurrences([shift], now - timedelta(days=8), now, tz) if o.end <= now]
            if not closed:
                self.message_user(request, f"{shift}: no closed occurrence in the last week.", messages.WARNING)
                continue
            last = closed[-1]
            label = f"{last.name} {last.day:%Y-%m-%d}"
            args = (shift.plant_id, "shift", last.start.isoformat(), last.end.isoformat(), label)
            transaction.on_commit(lambda a=args: run_oee_report.delay(*a))
            self.message_user(request, f"Report '{label}' of {shift.plant} queued.")


@admin.register(NonProductionDay)
class NonProductionDayAdmin(CalendarAdmin):
    list_display = ["date", "plant", "reason"]
    list_filter = ["plant"]


@admin.register(ReasonCode)
class ReasonCodeAdmin(PlantScopedAdmin):
    list_display = ["code", "name", "category", "plant"]
    list_filter = ["plant", "category"]
    search_fields = ["code", "name"]


@admin.register(StopReason)
class StopReasonAdmin(PlantScopedAdmin):
    plant_field = "device__plant"
    list_display = ["device", "start", "reason", "classified_by", "classified_at"]
    list_select_related = ["device", "reason", "classified_by"]
    raw_id_fields = ["device", "reason", "classified_by"]


@admin.register(ReportSubscription)
class ReportSubscriptionAdmin(PlantScopedAdmin):
    list_display = ["user", "plant", "kinds"]
    list_filter = ["plant"]
    raw_id_fields = ["user"]


@admin.register(OEEReport)
class OEEReportAdmin(PlantScopedAdmin):
    list_display = ["label", "kind", "plant", "period_start", "status", "revision", "revised", "csv_link"]
    list_filter = ["plant", "kind", "status"]
    readonly_fields = [f.name for f in OEEReport._meta.fields]
    actions = ["recompute"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(boolean=True)
    def revised(self, obj):
        return obj.revised

    @admin.display(description="CSV")
    def csv_link(self, obj):
        return format_html('<a href="{}">download</a>', reverse("admin:analytics_oeereport_csv", args=[obj.pk]))

    def get_urls(self):
        view = self.admin_site.admin_view(self.csv_view)
        return [path("<int:pk>/csv/", view, name="analytics_oeereport_csv"), *super().get_urls()]

    def csv_view(self, request, pk):
        report = get_object_or_404(self.get_queryset(request).select_related("plant"), pk=pk)
        audit_record(event="export", obj=report, plant=report.plant_id, data={"format": "csv"})
        response = HttpResponse(report_csv(report), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="oee-{report.kind}-{report.pk}.csv"'
        return response

    @admin.action(description="Recompute selected reports now (e-mailed again when the figures changed)")
    def recompute(self, request, queryset):
        for report in queryset:
            args = (report.plant_id, report.kind, report.period_start.isoformat(), report.period_end.isoformat())
            transaction.on_commit(lambda a=(*args, report.label): run_oee_report.delay(*a))
        self.message_user(request, f"{queryset.count()} report(s) queued.")
