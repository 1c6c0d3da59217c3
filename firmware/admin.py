"""Admin: upload images (checksum and signature computed), watch rollouts with per-stage progress."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.html import format_html, format_html_join

from accounts.admin_scoping import PlantScopedAdmin
from firmware.models import FirmwareImage, MaintenanceWindow, Rollout, RolloutEvent, RolloutTarget
from firmware.services import rollouts
from firmware.services.images import image_create, image_delete


class FirmwareImageForm(forms.ModelForm):
    hardware_models_text = forms.CharField(label="Hardware models", help_text="Comma-separated, e.g. HP-400, HP-500.")
    declared_sha256 = forms.CharField(required=False, label="Expected SHA-256", help_text="Refuse a corrupt upload.")

    class Meta:
        model = FirmwareImage
        fields = ["plant", "version", "release_notes", "file"]


@admin.register(FirmwareImage)
class FirmwareImageAdmin(PlantScopedAdmin):
    list_display = ["version", "plant", "models", "size", "short_sha", "signed", "created_at"]
    list_filter = ["plant"]
    search_fields = ["version", "release_notes"]
    readonly_fields = ["size", "sha256", "signature", "created_by", "created_at"]

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = FirmwareImageForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["plant", "version", "hardware_models_text", "release_notes", "file", "declared_sha256"]
        return ["plant", "version", "hardware_models", "release_notes", "size", "sha256", "signature", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["plant", "version", "hardware_models", "size", "sha256", "signature", "created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["release_notes"])
            return
        data = form.cleaned_data
        try:
            image = image_create(
                plant=data["plant"], version=data["version"], release_notes=data.get("release_notes", ""),
                hardware_models=data["hardware_models_text"].split(","), file=data["file"],
                declared_sha256=data.get("declared_sha256", ""), by=request.user,
            )  # fmt: skip
        except ValidationError as exc:
            form.add_error(None, exc)
            raise
        obj.pk = image.pk

    def delete_model(self, request, obj):
        try:
            image_delete(image=obj)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)

    @admin.display(description="Models")
    def models(self, obj):
        return ", ".join(obj.hardware_models)

    @admin.display(description="SHA-256")
    def short_sha(self, obj):
        return obj.sha256[:12]

    @admin.display(boolean=True)
    def signed(self, obj):
        return bool(obj.signature)


class RolloutTargetInline(admin.TabularInline):
    model = RolloutTarget
    fields = ["device", "stage", "status", "detail", "previous_version", "attempts", "progress_at"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0
    ordering = ["stage", "device__uid"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("device")


class RolloutEventInline(admin.TabularInline):
    model = RolloutEvent
    fields = ["at", "action", "by", "detail"]
    readonly_fields = fields
    can_delete = False
    extra = 0
    max_num = 0


def _bar(entry) -> str:
    counts, total = entry["counts"], entry["total"] or 1
    done = counts.get("succeeded", 0) * 100 // total
    bad = (counts.get("failed", 0) + counts.get("timed_out", 0)) * 100 // total
    summary = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()))
    # An SVG drawn with attributes, not style="" (the site's CSP allows no inline styles).
    return format_html(
        '<svg width="240" height="10" aria-hidden="true"><title>{}</title><rect width="100%" height="10" fill="#ddd"/>'
        '<rect width="{}%" height="10" fill="#2a2"/><rect x="{}%" width="{}%" height="10" fill="#c22"/></svg>'
        "<small>stage {}: {}</small>",
        summary, done, done, bad, entry["stage"], summary,
    )  # fmt: skip


S = Rollout.State
FINISHED = (S.COMPLETED, S.CANCELLED, S.FAILED)
# The actions each state allows (as the services check them): offered when the list is filtered by state.
ACTIONS_BY_STATE = {
    S.DRAFT: ["start", "cancel"],
    S.SCHEDULED: ["start", "pause", "cancel"],
    S.RUNNING: ["pause", "cancel", "retry", "rollback"],
    S.PAUSED: ["resume", "cancel", "retry", "rollback"],
    S.COMPLETED: ["retry", "rollback"],
    S.FAILED: ["retry", "rollback"],
    S.CANCELLED: ["rollback"],
}
# What stays editable once a rollout left its draft: its targets and image were fixed by rollout_create.
EDITABLE = {
    S.DRAFT: {"name", "stages", "success_threshold", "error_threshold", "auto_advance", "scheduled_at"},
    S.SCHEDULED: {"name", "stages", "success_threshold", "error_threshold", "auto_advance", "scheduled_at"},
    S.RUNNING: {"name", "success_threshold", "error_threshold", "auto_advance"},
    S.PAUSED: {"name", "success_threshold", "error_threshold", "auto_advance"},
}


@admin.register(Rollout)
class RolloutAdmin(PlantScopedAdmin):
    list_display = ["name", "plant", "image", "state", "current_stage", "progress", "created_at"]
    list_filter = ["state", "plant"]
    search_fields = ["name"]
    inlines = [RolloutEventInline, RolloutTargetInline]
    actions = ["start", "pause", "resume", "cancel", "retry", "rollback"]
    readonly_fields = ["state", "current_stage", "awaiting_approval", "pause_reason", "stage_progress", "rollback_of",
                       "created_by", "started_at", "finished_at"]  # fmt: skip

    def has_add_permission(self, request):
        return False  # targets are resolved by the API's rollout_create (selection + compatibility)

    def has_change_permission(self, request, obj=None):
        # A finished rollout is history: its page is read-only (no Save; a POST is refused with 403).
        if obj is not None and obj.state in FINISHED:
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is None:
            return fields
        editable = EDITABLE.get(obj.state, set())
        fixed = [f.name for f in Rollout._meta.fields if f.editable and not f.primary_key and f.name not in editable]
        return fields + [name for name in fixed if name not in fields]

    def get_actions(self, request):
        actions = super().get_actions(request)
        state = request.GET.get("state__exact")
        if state in ACTIONS_BY_STATE:  # a list of one state: only what makes sense for it
            allowed = set(ACTIONS_BY_STATE[state]) | {"delete_selected"}
            actions = {name: action for name, action in actions.items() if name in allowed}
        return actions

    @admin.display(description="Progress")
    def progress(self, obj):
        return format_html_join("", "{}", ((_bar(entry),) for entry in rollouts.rollout_progress(obj)))

    @admin.display(description="Per-stage progress")
    def stage_progress(self, obj):
        return self.progress(obj)

    def _run(self, request, queryset, service, label):
        for rollout in queryset:
            try:
                service(rollout=rollout, by=request.user)
                self.message_user(request, f"{rollout}: {label}.")
            except ValidationError as exc:
                self.message_user(request, f"{rollout}: {'; '.join(exc.messages)}", messages.ERROR)

    @admin.action(description="Start selected rollouts")
    def start(self, request, queryset):
        self._run(request, queryset, rollouts.rollout_start, "started")

    @admin.action(description="Pause selected rollouts")
    def pause(self, request, queryset):
        self._run(request, queryset, rollouts.rollout_pause, "paused")

    @admin.action(description="Resume selected rollouts")
    def resume(self, request, queryset):
        self._run(request, queryset, rollouts.rollout_resume, "resumed")

    @admin.action(description="Cancel selected rollouts")
    def cancel(self, request, queryset):
        self._run(request, queryset, rollouts.rollout_cancel, "cancelled")

    @admin.action(description="Retry failed devices")
    def retry(self, request, queryset):
        self._run(request, queryset, rollouts.rollout_retry, "retrying")

    @admin.action(description="Roll back selected rollouts")
    def rollback(self, request, queryset):
        self._run(request, queryset, rollouts.rollout_rollback, "rolled back")


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(PlantScopedAdmin):
    list_display = ["plant", "start", "end", "weekdays"]
