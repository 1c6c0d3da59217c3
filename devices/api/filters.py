import django_filters

from devices.models import Device, DeviceGroup, DeviceToken, Line
from factory.filters import BooleanFilter, FilterSet, IdFilter


def _id_filter(field_name: str, label: str) -> IdFilter:
    # A plain id, not a ModelChoiceFilter: its unscoped choices would answer 400 for a missing id
    # but 200 for another plant's, telling a user which ids exist in plants they cannot see.
    return IdFilter(field_name=field_name, label=label)


class LineFilterSet(FilterSet):
    plant = _id_filter("plant", "Plant id")

    class Meta:
        model = Line
        fields = ["plant"]


class DeviceFilterSet(FilterSet):
    plant = _id_filter("plant", "Plant id")
    line = _id_filter("line", "Line id")
    group = IdFilter(field_name="groups", label="Device group id")
    model = django_filters.CharFilter(lookup_expr="iexact")
    firmware_version = django_filters.CharFilter()

    class Meta:
        model = Device
        fields = ["plant", "line", "kind", "enabled", "model", "firmware_version", "group"]


class DeviceGroupFilterSet(FilterSet):
    plant = _id_filter("plant", "Plant id")
    device = IdFilter(field_name="devices", label="Groups containing this device id")

    class Meta:
        model = DeviceGroup
        fields = ["plant", "device"]


class DeviceTokenFilterSet(FilterSet):
    device = _id_filter("device", "Device id")
    revoked = BooleanFilter(field_name="revoked_at", lookup_expr="isnull", exclude=True)

    class Meta:
        model = DeviceToken
        fields = ["device", "revoked"]
