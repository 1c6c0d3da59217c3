import django_filters

from commands.models import Command, CommandDefinition


class CommandFilterSet(django_filters.FilterSet):
    # A plain id (see devices.api.filters): another plant's device must not answer differently.
    device = django_filters.NumberFilter(field_name="device", label="Device id")
    plant = django_filters.NumberFilter(field_name="device__plant", label="Plant id")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Command
        fields = ["device", "plant", "state", "name"]


class CommandDefinitionFilterSet(django_filters.FilterSet):
    model = django_filters.CharFilter(lookup_expr="iexact")

    class Meta:
        model = CommandDefinition
        fields = ["model", "name", "role", "enabled"]
