import django_filters

from alerts.models import Alarm, AlertRule, Delivery, NotificationChannel, NotificationRoute
from factory.filters import BooleanFilter, FilterSet, IdFilter


def _id(field_name: str, label: str) -> IdFilter:
    # Plain ids (not ModelChoiceFilter): unscoped choices would tell which ids exist in other plants.
    return IdFilter(field_name=field_name, label=label)


class AlertRuleFilterSet(FilterSet):
    plant = _id("plant", "Plant id")
    device = _id("device", "Device id (device-scoped rules)")

    class Meta:
        model = AlertRule
        fields = ["plant", "device", "scope", "condition", "severity", "enabled", "metric"]


class AlarmFilterSet(FilterSet):
    plant = _id("plant", "Plant id")
    device = _id("device", "Device id")
    line = _id("device__line", "Line id")
    rule = _id("rule", "Rule id")
    state = django_filters.MultipleChoiceFilter(choices=Alarm.State.choices)
    severity = django_filters.MultipleChoiceFilter(choices=AlertRule._meta.get_field("severity").choices)
    open = BooleanFilter(method="filter_open", label="Only open (true) or only closed (false)")
    raised_after = django_filters.IsoDateTimeFilter(field_name="raised_at", lookup_expr="gte")
    raised_before = django_filters.IsoDateTimeFilter(field_name="raised_at", lookup_expr="lt")

    class Meta:
        model = Alarm
        fields = ["plant", "device", "line", "rule", "state", "severity", "suppressed"]

    def filter_open(self, queryset, name, value):
        return queryset.filter(active_key__isnull=not value)


class ChannelFilterSet(FilterSet):
    plant = _id("plant", "Plant id")

    class Meta:
        model = NotificationChannel
        fields = ["plant", "kind", "enabled", "status"]


class RouteFilterSet(FilterSet):
    plant = _id("plant", "Plant id")
    channel = _id("channel", "Channel id")

    class Meta:
        model = NotificationRoute
        fields = ["plant", "channel", "enabled"]


class DeliveryFilterSet(FilterSet):
    plant = _id("plant", "Plant id")
    channel = _id("channel", "Channel id")

    class Meta:
        model = Delivery
        fields = ["plant", "channel", "status"]
