import django_filters
from django import forms
from django.core.validators import RegexValidator

from audit.models import AuditEntry

ACTIONS = {name: value for value, name in AuditEntry.Action.choices}


class _IdFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField  # ?plant=0.5 is an error (400), not a lookup


class AuditEntryFilterSet(django_filters.FilterSet):
    plant = _IdFilter(field_name="plant", label="Plant id")
    actor = django_filters.CharFilter(field_name="actor__username", label="Username of the person who acted")
    action = django_filters.ChoiceFilter(
        choices=[(name, name) for name in ACTIONS], method="filter_action", label="create, update, delete or access"
    )
    event = django_filters.CharFilter(label="e.g. login_failed, token_revoked, rollout_paused, export")
    object_type = django_filters.CharFilter(
        method="filter_object_type",
        label="app.model, e.g. devices.device",
        validators=[RegexValidator(r"^\w+\.\w+\Z", "Write app.model, e.g. devices.device or alerts.alertrule.")],
    )
    object_id = django_filters.CharFilter(field_name="object_pk", label="The object's id")
    since = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="gte", label="From (ISO 8601)")
    until = django_filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt", label="Before (ISO 8601)")

    class Meta:
        model = AuditEntry
        fields = ["plant", "actor", "action", "event", "object_type", "object_id", "since", "until"]

    def filter_action(self, queryset, name, value):
        return queryset.filter(action=ACTIONS[value])

    def filter_object_type(self, queryset, name, value):
        app_label, _, model = value.lower().partition(".")
        return queryset.filter(content_type__app_label=app_label, content_type__model=model)
