"""Admin pages for rules, alarms (with their history), channels, routes and deliveries, scoped to the
plants the user administers (``PlantScopedAdmin``)."""

from django import forms
from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from accounts.admin_scoping import PlantScopedAdmin
from accounts.roles import PERM_MANAGE
from accounts.selectors import scope_to_plants
from alerts.display import alarm_value, rule_in_words
from alerts.models import Alarm, AlarmEvent, AlertRule, Delivery, NotificationChannel, NotificationRoute
from alerts.notifiers import NOTIFIERS, kind_enabled, notifier_class
from alerts.services import alarms as alarm_services
from devices.models import Metric


def _with_metric(queryset, field: str):
    """Annotate each row with how the metric named in ``field`` reads (subqueries: no query per row)."""
    stored = Metric.objects.filter(name=OuterRef(field))
    return queryset.annotate(
        metric_unit=Subquery(stored.values("unit")[:1]),
        metric_display=Subquery(stored.values("display_name")[:1]),
        metric_precision=Subquery(stored.values("precision")[:1]),
    )


def _metric_row(rule, row) -> Metric | None:
    """``rule``'s metric as ``row``'s annotations say it reads; None: not stored (its name's defaults)."""
    if not rule.metric or getattr(row, "metric_unit", None) is None:
        return None
    return Metric(
        name=rule.metric, display_name=row.metric_display or "", unit=row.metric_unit, precision=row.metric_precision
    )


@admin.register(AlertRule)
class AlertRuleAdmin(PlantScopedAdmin):
    list_display = ["name", "plant", "scope", "rule", "severity", "enabled"]
    list_filter = ["plant", "severity", "condition", "enabled"]
    search_fields = ["name", "metric", "description"]
    list_select_related = ["plant"]
    readonly_fields = ["rule"]
    fieldsets = [
        (None, {"fields": ["plant", "name", "rule", "enabled", "severity", "description", "action"]}),
        ("Scope", {"fields": ["scope", "line", "group", "device", "device_model"]}),
        ("Condition", {"fields": ["metric", "condition", "threshold", "threshold_high", "clear_threshold",
                                  "clear_threshold_high", "state", "no_data_seconds"]}),
        ("Timing", {"fields": ["on_delay", "off_delay", "realarm_seconds"]}),
    ]  # fmt: skip

    def get_queryset(self, request):
        return _with_metric(super().get_queryset(request), "metric")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:  # nothing to put in words before it is saved
            fieldsets = [
                (name, {**opts, "fields": [f for f in opts["fields"] if f != "rule"]}) for name, opts in fieldsets
            ]
        return fieldsets

    @admin.display(description="rule")
    def rule(self, obj):
        if obj.pk is None:
            return "–"
        return rule_in_words(obj, _metric_row(obj, obj))


class AlarmEventInline(admin.TabularInline):
    model = AlarmEvent
    fields = ["at", "kind", "user", "comment", "value_shown", "state"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["at", "pk"]

    def get_queryset(self, request):
        # How the metric reads comes with the events: one query, not one per event.
        return _with_metric(super().get_queryset(request).select_related("alarm__rule", "user"), "alarm__rule__metric")

    @admin.display(description="value")
    def value_shown(self, event):
        """The reading with its unit and the rule's precision (``0.063 mm/s``)."""
        return alarm_value(event.value, event.alarm.rule, _metric_row(event.alarm.rule, event)) or "–"

    def has_add_permission(self, request, obj=None):
        return False


def _run(modeladmin, request, queryset, service, **kwargs):
    now = timezone.now()
    changed = 0
    for alarm in queryset.select_related("rule"):
        try:
            changed += service(alarm=alarm, by=request.user, now=now, **kwargs).changed
        except Exception as exc:  # a ValidationError (e.g. closed alarm): report, continue
            modeladmin.message_user(request, f"{alarm}: {exc}", messages.WARNING)
    modeladmin.message_user(request, f"{changed} of {queryset.count()} alarm(s) changed.")


@admin.register(Alarm)
class AlarmAdmin(PlantScopedAdmin):
    list_display = ["raised_at", "severity", "device", "rule", "state", "shelved_until", "suppressed", "value_shown"]
    list_filter = ["plant", "state", "severity", "suppressed"]
    search_fields = ["message", "device__uid", "rule__name"]
    list_select_related = ["device", "rule", "plant"]
    date_hierarchy = "raised_at"
    inlines = [AlarmEventInline]
    # Every field read-only; the value with its unit and the rule's precision instead of the raw float.
    readonly_fields = [
        *(f.name for f in Alarm._meta.fields if f.name not in ("id", "value")),
        "value_shown",
        "rule_in_words",
    ]
    exclude = ["value"]
    actions = ["acknowledge", "shelve_one_hour", "unshelve", "resolve"]

    def get_queryset(self, request):
        return _with_metric(super().get_queryset(request), "rule__metric")

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f != "rule_in_words"]
        return fields[: fields.index("rule") + 1] + ["rule_in_words"] + fields[fields.index("rule") + 1 :]

    @admin.display(description="condition")
    def rule_in_words(self, alarm):
        return rule_in_words(alarm.rule, _metric_row(alarm.rule, alarm))

    def has_add_permission(self, request):
        return False

    @admin.display(description="value", ordering="value")
    def value_shown(self, alarm):
        """The value with its unit and the rule's precision (``0.063 mm/s``), from the row's annotations."""
        return alarm_value(alarm.value, alarm.rule, _metric_row(alarm.rule, alarm)) or "–"

    @admin.action(description="Acknowledge selected alarms")
    def acknowledge(self, request, queryset):
        _run(self, request, queryset, alarm_services.alarm_acknowledge, comment="Acknowledged in the admin.")

    @admin.action(description="Shelve selected alarms for one hour")
    def shelve_one_hour(self, request, queryset):
        _run(self, request, queryset, alarm_services.alarm_shelve, reason="Shelved in the admin.", minutes=60)

    @admin.action(description="Unshelve selected alarms")
    def unshelve(self, request, queryset):
        _run(self, request, queryset, alarm_services.alarm_unshelve)

    @admin.action(description="Resolve (close) selected alarms")
    def resolve(self, request, queryset):
        _run(self, request, queryset, alarm_services.alarm_resolve, note="Resolved in the admin.")


class ChannelForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=[(k, k) for k in NOTIFIERS])

    class Meta:
        model = NotificationChannel
        fields = ["plant", "name", "kind", "config", "enabled"]

    def clean(self):
        data = super().clean()
        kind, config = data.get("kind"), data.get("config")
        if kind and not kind_enabled(kind):
            self.add_error("kind", f"Channel kind '{kind}' is switched off on this server.")
        elif kind:
            if self.instance.pk and isinstance(config, dict) and config.get("secret") == "********":
                config["secret"] = self.instance.config.get("secret")
            schema = notifier_class(kind).config_schema(data=config if isinstance(config, dict) else {})
            if not schema.is_valid():
                problems = "; ".join(
                    f"{name}: {' '.join(map(str, errors)) if isinstance(errors, list) else errors}"
                    for name, errors in schema.errors.items()
                )
                self.add_error("config", f"Invalid settings: {problems}")
        return data


@admin.register(NotificationChannel)
class NotificationChannelAdmin(PlantScopedAdmin):
    form = ChannelForm
    list_display = ["name", "plant", "kind", "enabled", "status", "failed_at"]
    list_filter = ["plant", "kind", "status", "enabled"]
    readonly_fields = ["status", "last_error", "failed_at"]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None:
            form.base_fields["config"].initial = notifier_class(obj.kind).public_config(obj.config)
        return form

    def save_model(self, request, obj, form, change):
        # Saving is how an admin fixes a failing channel.
        obj.status, obj.last_error, obj.failed_at = NotificationChannel.Status.OK, "", None
        super().save_model(request, obj, form, change)


@admin.register(NotificationRoute)
class NotificationRouteAdmin(PlantScopedAdmin):
    list_display = ["__str__", "plant", "delay_minutes", "enabled"]
    list_filter = ["plant", "enabled"]
    filter_horizontal = ["users"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "channel":
            kwargs["queryset"] = scope_to_plants(NotificationChannel.objects.all(), request.user, PERM_MANAGE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Delivery)
class DeliveryAdmin(PlantScopedAdmin):
    list_display = ["created_at", "channel", "status", "attempts", "duration_ms", "sent_at", "error"]
    list_filter = ["plant", "status"]
    list_select_related = ["channel"]
    readonly_fields = ["channel", "plant", "key", "status", "scheduled_at", "attempts", "error", "duration_ms",
                       "created_at", "sent_at"]  # fmt: skip
    exclude = ["events"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
